"""What the desk records during an encounter: agents, the request and the people named,
the document, an emergency, the outcome, and what arrives after the record ended. Each
operation takes a session and plain values, flushes, and never commits."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk import vocabulary
from kiosk.localtime import local
from kiosk.models import Agent, Encounter, LateAddition, NamedPerson
from kiosk.notify.links import Links
from kiosk.protocol import routing, search
from kiosk.protocol.encounters import (
    REQUEST_KINDS,
    OperationError,
    apply_changes,
    require_desk_open,
)
from kiosk.protocol.events import Actor, record_event
from kiosk.sealing import blind_index


def add_late_addition(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    step: str,
    fields: dict[str, str],
) -> LateAddition | None:
    """Keep what the desk sent after its record ended, marked as late; never drop it."""
    content = {name: value for name, value in fields.items() if value}
    if not content:
        return None
    addition = LateAddition(
        encounter_id=encounter.id,
        kiosk_id=actor.kiosk_id,
        step=step[:30],
        content=json.dumps(content, sort_keys=True, ensure_ascii=False),
        created_at=now,
    )
    session.add(addition)
    session.flush()
    # The fields may name people: the event names only which fields came.
    record_event(
        session,
        encounter,
        "late_addition",
        actor,
        now,
        {"late_addition": addition.id, "step": step, "fields": sorted(content)},
    )
    return addition


@dataclass(frozen=True)
class AgentInput:
    name: str | None = None
    badge_number: str | None = None
    agency_printed: str | None = None
    agency_pick: str | None = None
    title: str | None = None
    phone: str | None = None
    supervisor_name: str | None = None
    supervisor_phone: str | None = None
    # Comma-joined, in ID_SHOWN order: identification is a set (shown when asked, then hidden).
    id_shown: str | None = None
    attire: str | None = None
    card_kept: bool = False

    def is_empty(self) -> bool:
        return not any(asdict(self).values())


def save_agent(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    values: AgentInput,
    position: int | None = None,
    *,
    index_key: str,
) -> Agent | None:
    """Add an agent (position None) or update one; an empty new agent is not added. The
    encounter's search digests follow its agents' names and agencies in the same flush."""
    require_desk_open(encounter)
    if position is None:
        if values.is_empty():
            return None
        last = session.scalar(
            select(func.max(Agent.position)).where(Agent.encounter_id == encounter.id)
        )
        agent = Agent(encounter_id=encounter.id, position=(last or 0) + 1, created_at=now)
        session.add(agent)
        session.flush()
        changed = apply_changes(agent, asdict(values))
        record_event(
            session, encounter, "agent_added", actor, now, {"agent": agent.position, **changed}
        )
        if search.AGENT_COLUMNS & changed.keys():
            search.reindex(session, encounter, index_key)
        return agent
    agent = session.scalar(
        select(Agent).where(Agent.encounter_id == encounter.id, Agent.position == position)
    )
    if agent is None:
        raise OperationError("There is no such agent in this record.")
    changed = apply_changes(agent, asdict(values))
    if changed:
        record_event(
            session, encounter, "agent_updated", actor, now, {"agent": position, **changed}
        )
        if search.AGENT_COLUMNS & changed.keys():
            search.reindex(session, encounter, index_key)
    return agent


@dataclass(frozen=True)
class RequestInput:
    place: str | None = None
    agents_present: int | None = None
    request_kinds: tuple[str, ...] = ()
    request_other: str | None = None
    purpose: str | None = None
    consent_claimed: str | None = None
    consent_claim: str | None = None
    child_with: str | None = None


# Columns that can name a person: events say only that they changed.
_NAMING_COLUMNS = frozenset({"child_with", "care_arranged"})


def _event_data(changed: dict[str, Any]) -> dict[str, Any]:
    return {k: ("recorded" if k in _NAMING_COLUMNS and v else v) for k, v in changed.items()}


def save_request(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    values: RequestInput,
    *,
    index_key: str,
) -> dict[str, Any]:
    require_desk_open(encounter)
    data = asdict(values)
    data["request_kinds"] = ",".join(k for k in REQUEST_KINDS if k in values.request_kinds)
    changed = apply_changes(encounter, data)
    if changed:
        record_event(session, encounter, "request_recorded", actor, now, _event_data(changed))
    if search.ENCOUNTER_COLUMNS & changed.keys():
        search.reindex(session, encounter, index_key)
    return changed


# What one tap on a fast path records, and the request kind it adds, if any.
SITUATION_KINDS = {
    "student": "student_access",
    "records": "student_info",
    "staff": "staff",
    "parent": "adult",
}


FAST_PATHS = ("emergency", "entering", *SITUATION_KINDS)


def record_situation(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    what: str,
    links: Links,
) -> dict[str, Any]:
    """Record, in one tap, what the agents say or do; the script follows at once."""
    require_desk_open(encounter)
    if what == "emergency":
        return save_exigency(
            session,
            encounter,
            actor,
            now,
            ExigencyInput(
                exigency=True,
                exigency_reason=encounter.exigency_reason,
                exigency_directives=encounter.exigency_directives,
            ),
            links,
        )
    if what == "entering":
        values: dict[str, Any] = {"entered_without_consent": True}
        if encounter.outcome in (None, "waited"):
            values["outcome"] = "entered_without_consent"
        if not encounter.entry_started:
            values["entry_started"] = local(now, encounter.school.timezone).strftime("%H:%M")
        changed = apply_changes(encounter, values)
        if changed:
            record_event(session, encounter, "entry_recorded", actor, now, changed)
        return changed
    kind = SITUATION_KINDS.get(what)
    if kind is None:
        raise OperationError("There is no such choice.")
    kinds = [k for k in encounter.request_kinds.split(",") if k]
    if kind in kinds:
        return {}
    kinds.append(kind)
    changed = apply_changes(
        encounter, {"request_kinds": ",".join(k for k in REQUEST_KINDS if k in kinds)}
    )
    record_event(session, encounter, "request_recorded", actor, now, changed)
    return changed


def add_named_person(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    name: str,
    relation: str,
    index_key: str,
) -> NamedPerson:
    """Record one person the agent named; the event refers to the row, never the name."""
    require_desk_open(encounter)
    last = session.scalar(
        select(func.max(NamedPerson.position)).where(NamedPerson.encounter_id == encounter.id)
    )
    person = NamedPerson(
        encounter_id=encounter.id,
        position=(last or 0) + 1,
        name=name,
        name_index=blind_index(index_key, name),
        relation=relation or "unknown",
        created_at=now,
    )
    session.add(person)
    session.flush()
    record_event(
        session,
        encounter,
        "person_named",
        actor,
        now,
        {"named_person_id": person.id, "relation": person.relation},
    )
    return person


def withdraw_named_person(
    session: Session, encounter: Encounter, actor: Actor, now: datetime, position: int
) -> None:
    """Mark a name entered by mistake as withdrawn; the row and its history stay."""
    require_desk_open(encounter)
    person = session.scalar(
        select(NamedPerson).where(
            NamedPerson.encounter_id == encounter.id, NamedPerson.position == position
        )
    )
    if person is None or person.withdrawn_at is not None:
        return
    person.withdrawn_at = now
    record_event(session, encounter, "person_withdrawn", actor, now, {"named_person_id": person.id})


@dataclass(frozen=True)
class ExigencyInput:
    exigency: bool | None = None
    exigency_reason: str | None = None
    exigency_directives: str | None = None


def save_exigency(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    values: ExigencyInput,
    links: Links,
) -> dict[str, Any]:
    """Record a declared emergency word for word; it alerts levels 1 and 2 at once."""
    require_desk_open(encounter)
    was_declared = bool(encounter.exigency)
    changed = apply_changes(encounter, asdict(values))
    if changed:
        record_event(session, encounter, "exigency_recorded", actor, now, changed)
    if encounter.exigency and not was_declared:
        rows = routing.enqueue_exigency(session, encounter, links, now)
        if encounter.escalation_level < 2:
            encounter.escalation_level = 2
            if encounter.first_acknowledged_at is None:
                encounter.next_escalation_at = encounter.started_at + timedelta(
                    minutes=encounter.school.level3_after_minutes
                )
        record_event(
            session,
            encounter,
            "exigency_alerted",
            Actor.system(),
            now,
            {"levels": [1, 2], "messages": [row.idempotency_key for row in rows]},
        )
    return changed


OUTCOMES = vocabulary.keys(vocabulary.OUTCOMES)


@dataclass(frozen=True)
class OutcomeInput:
    outcome: str | None = None
    entry_areas: str | None = None
    entry_started: str | None = None
    entry_ended: str | None = None
    outcome_other: str | None = None
    witnesses: str | None = None


def save_outcome(
    session: Session, encounter: Encounter, actor: Actor, now: datetime, values: OutcomeInput
) -> dict[str, Any]:
    require_desk_open(encounter)
    data = asdict(values)
    if values.outcome == "entered_without_consent":
        data["entered_without_consent"] = True
    changed = apply_changes(encounter, data)
    if changed:
        record_event(session, encounter, "outcome_recorded", actor, now, changed)
    return changed
