"""Operations on encounters. Each takes a session and plain values, flushes, never commits."""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from kiosk.db import locked
from kiosk.models import (
    Agent,
    Document,
    Encounter,
    Kiosk,
    LateAddition,
    NamedPerson,
)
from kiosk.notify import alerts
from kiosk.notify.links import Links
from kiosk.notify.localtime import local
from kiosk.protocol import scripts as script_rules
from kiosk.protocol.documents import (
    DOC_LABELS,
    PICKS_BY_KEY,
    DocType,
    Pick,
    TriageAnswers,
    triage,
)
from kiosk.protocol.events import Actor, record_event
from kiosk.protocol.scriptstore import current_script_version
from kiosk.protocol.state import Status, is_active, move

CHANNELS = script_rules.CHANNELS
PLACES = (
    "front_desk",
    "entrance",
    "lobby",
    "parking_lot",
    "bus",
    "field_trip",
    "event",
    "phone",
    "elsewhere",
)
# Places away from the school building: a school may route them to contacts of their own.
OFFSITE_PLACES = ("bus", "field_trip", "event")
REQUEST_KINDS = ("student_access", "student_info", "staff", "adult", "entry", "other")
ID_SHOWN = ("freely", "when_asked", "refused", "hidden")


class OperationError(ValueError):
    """A request the encounter cannot take now; field names the form field it concerns."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DeskClosedError(OperationError):
    """The record ended (resolved, stood down, or closed at the desk) before the desk's
    input reached it; the input is kept as a late addition instead."""

    def __init__(self, encounter_id: int) -> None:
        super().__init__("This record is closed at the desk.")
        self.encounter_id = encounter_id


@dataclass(frozen=True)
class StartResult:
    encounter: Encounter
    created: bool


def lock_encounter(session: Session, encounter_id: int) -> Encounter:
    """Load the encounter a unit of work acts on, locked, from the database."""
    encounter = locked(session, Encounter, encounter_id)
    if encounter is None:
        raise OperationError("There is no such record.")
    return encounter


def current_encounter(session: Session, kiosk: Kiosk) -> Encounter | None:
    """Return the encounter open at this kiosk's desk, if any."""
    return session.scalar(
        select(Encounter)
        .where(
            Encounter.kiosk_id == kiosk.id,
            Encounter.desk_closed_at.is_(None),
            Encounter.status.in_([Status.OPEN, Status.ACKNOWLEDGED]),
        )
        .order_by(Encounter.started_at.desc())
        .limit(1)
    )


def start_encounter(
    session: Session,
    kiosk: Kiosk,
    channel: str,
    nonce: str,
    now: datetime,
    links: Links,
    place: str | None = None,
) -> StartResult:
    """Create the encounter and its level-1 alert rows; a repeated tap returns the same one.

    A place chosen before the tap (a bus, a field trip) alerts the contacts the school
    routes that place to, in the same transaction.
    """
    if channel not in CHANNELS:
        channel = "in_person"
    place = _place_for(channel, place)
    # Lock the kiosk row (PostgreSQL) so two taps in flight cannot both create; SQLite's
    # BEGIN IMMEDIATE already serialises writers.
    if session.get_bind().dialect.name != "sqlite":
        session.execute(select(Kiosk.id).where(Kiosk.id == kiosk.id).with_for_update())
    existing = current_encounter(session, kiosk)
    if existing is not None:
        return StartResult(existing, created=False)
    if nonce and session.scalar(select(Encounter.id).where(Encounter.start_nonce == nonce)):
        nonce = ""  # an old page's nonce whose encounter is finished: this is a new tap
    version = current_script_version(session, now)
    encounter = Encounter(
        school_id=kiosk.school_id,
        kiosk_id=kiosk.id,
        start_nonce=nonce or None,
        channel=channel,
        place=place,
        started_at=now,
        status=Status.OPEN,
        script_version_id=version.id,
    )
    encounter.school = kiosk.school
    encounter.next_escalation_at = now + timedelta(minutes=kiosk.school.level1_minutes)
    session.add(encounter)
    session.flush()
    record_event(
        session,
        encounter,
        "started",
        kiosk_actor(kiosk),
        now,
        {"channel": channel, "place": place},
    )
    rows = alerts.enqueue_alert(session, encounter, links, now, level=1, new_encounter=True)
    record_event(
        session,
        encounter,
        "alert_enqueued",
        Actor.system(),
        now,
        {"level": 1, "place": place, "messages": [row.idempotency_key for row in rows]},
    )
    return StartResult(encounter, created=True)


def _place_for(channel: str, place: str | None) -> str | None:
    """Return the place to record: a call is "phone" unless an off-site place is known."""
    if place not in PLACES or (place == "phone" and channel != "phone"):
        place = None
    if channel == "phone" and place is None:
        return "phone"
    return place


def set_channel(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    channel: str,
    place: str | None,
    links: Links,
) -> dict[str, Any]:
    """Correct how the request is made and where; a newly chosen off-site place is alerted."""
    _require_desk_open(encounter)
    if channel not in CHANNELS:
        raise OperationError("Choose how the request is made.", field="channel")
    if place is not None and place not in PLACES:
        raise OperationError("Choose a place from the list.", field="place")
    changed = _changes(encounter, {"channel": channel, "place": _place_for(channel, place)})
    if not changed:
        return changed
    record_event(session, encounter, "channel_changed", actor, now, changed)
    if "place" in changed and encounter.place in OFFSITE_PLACES:
        rows = alerts.enqueue_place_alert(session, encounter, links, now)
        if rows:
            record_event(
                session,
                encounter,
                "place_alerted",
                Actor.system(),
                now,
                {"place": encounter.place, "messages": [row.idempotency_key for row in rows]},
            )
    return changed


# An open record older than this, or one that has run past the end of its school day, is
# not assumed to be the visit in front of the desk now.
STALE_AFTER = timedelta(hours=8)


def is_stale(encounter: Encounter, now: datetime) -> bool:
    """Say whether the desk should be asked "Is this the same visit?" before going on."""
    since = encounter.visit_confirmed_at or encounter.started_at
    if now - since >= STALE_AFTER:
        return True
    school = encounter.school
    began = local(since, school.timezone)
    current = local(now, school.timezone)
    if current.date() != began.date():
        return True
    closing = school.hours_close or "23:59"
    return began.strftime("%H:%M") < closing <= current.strftime("%H:%M")


def confirm_same_visit(session: Session, encounter: Encounter, actor: Actor, now: datetime) -> None:
    """The desk says the old open record is still the visit in front of it."""
    _require_desk_open(encounter)
    encounter.visit_confirmed_at = now
    record_event(session, encounter, "same_visit_confirmed", actor, now, {})


def start_instead_of(
    session: Session,
    kiosk: Kiosk,
    old: Encounter,
    actor: Actor,
    nonce: str,
    now: datetime,
    links: Links,
) -> StartResult:
    """A new request while an old record is open: close the old one as abandoned (the
    office is told by its event and list), and start the new one with its own alert."""
    if desk_accepts_input(old):
        old.desk_closed_at = now
        if is_active(old.status):
            old.status = move(old.status, Status.RESOLVED)
            old.resolved_at = now
            old.next_escalation_at = None
        record_event(session, old, "abandoned", actor, now, {"reason": "a new request at the desk"})
        session.flush()
    return start_encounter(session, kiosk, old.channel, nonce, now, links)


def kiosk_actor(kiosk: Kiosk, user_id: int | None = None, user_name: str = "") -> Actor:
    label = f"kiosk {kiosk.label} ({kiosk.school.name})"
    if user_name:
        label = f"{user_name} at {label}"
    return Actor(kind="kiosk", label=label, kiosk_id=kiosk.id, user_id=user_id)


def _changes(target: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Set the values that differ and return them (old values stay in earlier events)."""
    changed = {}
    for name, value in values.items():
        if getattr(target, name) != value:
            setattr(target, name, value)
            changed[name] = value
    return changed


def desk_accepts_input(encounter: Encounter) -> bool:
    return encounter.desk_closed_at is None and is_active(encounter.status)


def _require_desk_open(encounter: Encounter) -> None:
    if not desk_accepts_input(encounter):
        raise DeskClosedError(encounter.id)


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
) -> Agent | None:
    """Add an agent (position None) or update one; an empty new agent is not added."""
    _require_desk_open(encounter)
    if position is None:
        if values.is_empty():
            return None
        last = session.scalar(
            select(func.max(Agent.position)).where(Agent.encounter_id == encounter.id)
        )
        agent = Agent(encounter_id=encounter.id, position=(last or 0) + 1, created_at=now)
        session.add(agent)
        session.flush()
        changed = _changes(agent, asdict(values))
        record_event(
            session, encounter, "agent_added", actor, now, {"agent": agent.position, **changed}
        )
        return agent
    agent = session.scalar(
        select(Agent).where(Agent.encounter_id == encounter.id, Agent.position == position)
    )
    if agent is None:
        raise OperationError("There is no such agent in this record.")
    changed = _changes(agent, asdict(values))
    if changed:
        record_event(
            session, encounter, "agent_updated", actor, now, {"agent": position, **changed}
        )
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
    session: Session, encounter: Encounter, actor: Actor, now: datetime, values: RequestInput
) -> dict[str, Any]:
    _require_desk_open(encounter)
    data = asdict(values)
    data["request_kinds"] = ",".join(k for k in REQUEST_KINDS if k in values.request_kinds)
    changed = _changes(encounter, data)
    if changed:
        record_event(session, encounter, "request_recorded", actor, now, _event_data(changed))
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
    _require_desk_open(encounter)
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
        changed = _changes(encounter, values)
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
    changed = _changes(
        encounter, {"request_kinds": ",".join(k for k in REQUEST_KINDS if k in kinds)}
    )
    record_event(session, encounter, "request_recorded", actor, now, changed)
    return changed


def blind_index(key: str, name: str) -> str:
    """Return a keyed hash of a normalised name, for finding a person without reading names."""
    folded = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
    return hmac.new(key.encode(), folded.encode(), hashlib.sha256).hexdigest()


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
    _require_desk_open(encounter)
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
    _require_desk_open(encounter)
    person = session.scalar(
        select(NamedPerson).where(
            NamedPerson.encounter_id == encounter.id, NamedPerson.position == position
        )
    )
    if person is None or person.withdrawn_at is not None:
        return
    person.withdrawn_at = now
    record_event(session, encounter, "person_withdrawn", actor, now, {"named_person_id": person.id})


def ensure_document(session: Session, encounter: Encounter, now: datetime) -> Document:
    """Return the encounter's document, creating the row on first use."""
    document = session.scalar(
        select(Document).where(Document.encounter_id == encounter.id, Document.position == 1)
    )
    if document is None:
        document = Document(encounter_id=encounter.id, position=1, answers="{}", created_at=now)
        session.add(document)
        session.flush()
    return document


def first_document(session: Session, encounter: Encounter) -> Document | None:
    return session.scalar(
        select(Document).where(Document.encounter_id == encounter.id, Document.position == 1)
    )


def save_triage(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    answers: TriageAnswers,
    links: Links,
    names_person: str | None = None,
    pick: Pick | None = None,
) -> DocType | None:
    """Store the desk's answers and the first impression they lead to; send the one follow-up.

    A pick (one tap on a common document) stands for its answers; detailed answers given
    later refine them.
    """
    _require_desk_open(encounter)
    if pick is not None:
        answers = pick.answers
        names_person = pick.names_person or names_person
    existing = first_document(session, encounter)
    before = TriageAnswers.from_mapping(json.loads(existing.answers) if existing else {})
    if existing is None and not any(answers.to_dict().values()) and not names_person:
        return None  # an empty form on a step never answered records nothing
    document = existing or ensure_document(session, encounter, now)
    impression = triage(answers)
    changed: dict[str, Any] = {}
    if before != answers:
        document.answers = json.dumps(answers.to_dict(), sort_keys=True)
        changed["answers"] = answers.to_dict()
        if pick is None and document.pick is not None:
            # The answers no longer are the pick's: the record says so.
            document.pick = None
            changed["pick"] = None
    if pick is not None and document.pick != pick.key:
        document.pick = pick.key
        changed["pick"] = pick.key
    if names_person != document.names_person and (names_person or pick is None):
        document.names_person = names_person
        changed["names_person"] = names_person
    value = impression.value if impression else None
    if document.first_impression != value:
        document.first_impression = value
        encounter.doc_first_impression = value
        changed["first_impression"] = value
    if changed:
        record_event(session, encounter, "document_triaged", actor, now, changed)
    if impression is not None and not encounter.followup_sent:
        send_followup(session, encounter, now, links)
    return impression


def pick_by_key(key: str | None) -> Pick | None:
    return PICKS_BY_KEY.get(key or "")


def stored_answers(document: Document | None) -> TriageAnswers:
    """Return the answers kept on a document; stored JSON that is damaged reads as none."""
    if document is None:
        return TriageAnswers()
    try:
        data = json.loads(document.answers or "{}")
    except ValueError:
        data = {}
    return TriageAnswers.from_mapping(data if isinstance(data, dict) else {})


def answers_from(data: dict[str, Any]) -> TriageAnswers:
    """Return the triage answers found in posted form data (other keys are ignored)."""
    return TriageAnswers.from_mapping(data)


def send_followup(session: Session, encounter: Encounter, now: datetime, links: Links) -> None:
    """Tell everyone alerted the categories recorded so far; once per encounter."""
    impression = encounter.doc_first_impression
    document = DOC_LABELS.get(DocType(impression), impression) if impression else "not recorded"
    exigency = {True: "yes", False: "no", None: "not recorded"}[encounter.exigency]
    kinds = [k for k in encounter.request_kinds.split(",") if k]
    rows = alerts.enqueue_followup(session, encounter, links, now, kinds, document, exigency)
    encounter.followup_sent = True
    record_event(
        session,
        encounter,
        "followup_enqueued",
        Actor.system(),
        now,
        {"messages": [row.idempotency_key for row in rows]},
    )


@dataclass(frozen=True)
class DocumentDetailsInput:
    issuer: str | None = None
    case_number: str | None = None
    dates: str | None = None
    names_addresses: str | None = None
    matches_school: str | None = None


def save_document_details(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    values: DocumentDetailsInput,
) -> dict[str, Any]:
    _require_desk_open(encounter)
    if first_document(session, encounter) is None and not any(asdict(values).values()):
        return {}
    document = ensure_document(session, encounter, now)
    changed = _changes(document, asdict(values))
    if changed:
        record_event(session, encounter, "document_details", actor, now, changed)
    return changed


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
    _require_desk_open(encounter)
    was_declared = bool(encounter.exigency)
    changed = _changes(encounter, asdict(values))
    if changed:
        record_event(session, encounter, "exigency_recorded", actor, now, changed)
    if encounter.exigency and not was_declared:
        rows = alerts.enqueue_exigency(session, encounter, links, now)
        if encounter.escalation_level < 2:
            encounter.escalation_level = 2
            if encounter.first_acknowledged_at is None:
                encounter.next_escalation_at = encounter.started_at + timedelta(
                    minutes=encounter.school.level2_minutes
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


OUTCOMES = ("waited", "left", "designee_took_over", "entered_without_consent", "other")


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
    _require_desk_open(encounter)
    data = asdict(values)
    if values.outcome == "entered_without_consent":
        data["entered_without_consent"] = True
    changed = _changes(encounter, data)
    if changed:
        record_event(session, encounter, "outcome_recorded", actor, now, changed)
    return changed


def close_desk(session: Session, encounter: Encounter, actor: Actor, now: datetime) -> None:
    """End the desk's part; the kiosk returns to idle and shows nothing of this encounter."""
    if encounter.desk_closed_at is not None:
        return
    encounter.desk_closed_at = now
    record_event(session, encounter, "desk_closed", actor, now, {})


def can_stand_down(encounter: Encounter, now: datetime, window_seconds: int) -> bool:
    return stand_down_seconds_left(encounter, now, window_seconds) is not None


def stand_down_seconds_left(encounter: Encounter, now: datetime, window_seconds: int) -> int | None:
    """Return how long "started by mistake" is still offered, or None once it is not."""
    if encounter.desk_closed_at is not None or not is_active(encounter.status):
        return None
    left = timedelta(seconds=window_seconds) - (now - encounter.started_at)
    if left < timedelta(0):
        return None
    return int(left.total_seconds())


def stand_down(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    window_seconds: int,
    links: Links,
) -> None:
    """Record that the tap was a mistake and tell everyone alerted; nothing is deleted."""
    if not can_stand_down(encounter, now, window_seconds):
        raise OperationError(
            "It is too late to mark this as started by mistake. "
            "Close the desk's part instead; the district office will review it."
        )
    encounter.status = move(encounter.status, Status.STOOD_DOWN)
    encounter.stood_down_at = now
    encounter.desk_closed_at = now
    rows = alerts.enqueue_stand_down(session, encounter, links, now)
    record_event(
        session,
        encounter,
        "stood_down",
        actor,
        now,
        {"messages": [row.idempotency_key for row in rows]},
    )


def facts_for(encounter: Encounter) -> script_rules.Facts:
    """Return what the script needs to know about the encounter so far."""
    # Read, not taken from the relationship: it may have been loaded before this request's
    # own change to the document.
    session = object_session(encounter)
    names_person = (
        session.scalar(
            select(Document.names_person).where(
                Document.encounter_id == encounter.id, Document.position == 1
            )
        )
        if session is not None and encounter.id is not None
        else None
    )
    return script_rules.Facts(
        channel=encounter.channel,
        document=encounter.doc_confirmed_type or encounter.doc_first_impression,
        document_confirmed=encounter.doc_confirmed_type is not None,
        exigency=bool(encounter.exigency),
        entered_without_consent=bool(encounter.entered_without_consent)
        or encounter.outcome == "entered_without_consent",
        consent_claimed=encounter.consent_claimed == "yes",
        document_names_person=names_person == "yes",
        request_kinds=frozenset(k for k in encounter.request_kinds.split(",") if k),
    )
