"""The read side: what the desk and the office pages show about an encounter, worked out
from the database without changing it (alert and escalation state, who acknowledged)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.localtime import clock_time
from kiosk.models import (
    Acknowledgement,
    Contact,
    DeskMessage,
    District,
    Encounter,
    OutboxMessage,
    User,
)
from kiosk.protocol.documents import DOC_LABELS, DOC_MEANING, DocType
from kiosk.protocol.encounters import facts_for
from kiosk.protocol.scripts import STEPS, Block, Facts, ScriptPack
from kiosk.protocol.scriptstore import pack_by_id
from kiosk.protocol.state import is_active


@dataclass(frozen=True)
class AlertState:
    """What the desk shows about its alert."""

    state: str  # "sending", "notified" or "undelivered"
    notified_at: datetime | None = None
    phones: list[str] = field(default_factory=list)


def alert_state(
    session: Session, encounter: Encounter, now: datetime, undelivered_after: int
) -> AlertState:
    """Say whether an alert was accepted, or, after a short wait, which numbers to call."""
    sent_at = session.scalar(
        select(func.min(OutboxMessage.sent_at)).where(
            OutboxMessage.encounter_id == encounter.id,
            OutboxMessage.kind == "alert",
            OutboxMessage.status == "sent",
        )
    )
    if sent_at is not None:
        return AlertState("notified", notified_at=sent_at)
    if now - encounter.started_at < timedelta(seconds=undelivered_after):
        return AlertState("sending")
    return AlertState("undelivered", phones=office_phones(session, encounter))


def office_phones(session: Session, encounter: Encounter) -> list[str]:
    """Return the numbers the desk can call: level-1 contacts, then the district office."""
    phones = [
        phone
        for phone in session.scalars(
            select(Contact.phone)
            .where(Contact.school_id == encounter.school_id, Contact.level == 1, Contact.active)
            .order_by(Contact.id)
        )
        if phone
    ]
    district = session.scalar(select(District).limit(1))
    if district is not None and district.office_phone:
        phones.append(district.office_phone)
    return list(dict.fromkeys(phones))


@dataclass(frozen=True)
class EscalationState:
    """What the desk shows once the first window passed with no acknowledgement."""

    missed: bool
    level: int
    seconds_to_next: int | None
    numbers: list[tuple[str, str]] = field(default_factory=list)


def window_missed(encounter: Encounter, now: datetime) -> bool:
    """Say whether the first window passed (or an emergency alerted level 2) unacknowledged."""
    window_end = encounter.started_at + timedelta(minutes=encounter.school.level2_after_minutes)
    return (
        encounter.first_acknowledged_at is None
        and is_active(encounter.status)
        and (now >= window_end or encounter.escalation_level > 1)
    )


def desk_version(encounter: Encounter, now: datetime, undelivered_after: int) -> str:
    """Return a short token that changes whenever anything the desk shows may have changed.

    Every change to an encounter is an event (event_count), the first accepted alert sets
    first_alert_sent_at, and the two moments that change the screen with no write at all
    (an alert still undelivered, a missed window) are part of it, so a kiosk that sends its
    last token back can be told "unchanged" without the rest being read.
    """
    undelivered = encounter.first_alert_sent_at is None and now - encounter.started_at >= (
        timedelta(seconds=undelivered_after)
    )
    parts = (
        encounter.event_count,
        encounter.status,
        encounter.first_alert_sent_at,
        encounter.escalation_level,
        encounter.next_escalation_at,
        undelivered,
        window_missed(encounter, now),
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def escalation_state(session: Session, encounter: Encounter, now: datetime) -> EscalationState:
    """From the first missed window: a countdown to the next alert and the numbers to call."""
    missed = window_missed(encounter, now)
    if not missed:
        return EscalationState(False, encounter.escalation_level, None)
    seconds = None
    if encounter.next_escalation_at is not None:
        seconds = max(0, int((encounter.next_escalation_at - now).total_seconds()))
    numbers = []
    if encounter.school.office_phone:
        numbers.append(("School office", encounter.school.office_phone))
    district = session.scalar(select(District).limit(1))
    if district is not None and district.office_phone:
        numbers.append(("District office", district.office_phone))
    if district is not None and district.hotline_enabled and district.hotline_phone:
        numbers.append(("Rapid-response hotline", district.hotline_phone))
    return EscalationState(True, encounter.escalation_level, seconds, numbers)


def acknowledger_name(session: Session, ack: Acknowledgement) -> str:
    """Return the name the desk sees: the signed-in user's, else the contact's."""
    if ack.user_id is not None:
        user = session.get(User, ack.user_id)
        if user is not None:
            return user.display_name
    if ack.contact_id is not None:
        contact = session.get(Contact, ack.contact_id)
        if contact is not None:
            return contact.name
    return "the district office"


def first_acknowledgement(session: Session, encounter: Encounter) -> Acknowledgement | None:
    return session.scalar(
        select(Acknowledgement)
        .where(Acknowledgement.encounter_id == encounter.id)
        .order_by(Acknowledgement.at, Acknowledgement.id)
        .limit(1)
    )


# How often the desk asks for news: fast while something can change any moment (the
# alert going out, an acknowledgement awaited), calm otherwise.
FAST_POLL_MS = 400
CALM_POLL_MS = 2000
# Steps whose own words ask the agent for something: kept in view below a more urgent panel.
ASKING_STEPS = ("agents", "request", "document")


def desk_pace(encounter: Encounter) -> int:
    """Poll quickly while the alert goes out or an acknowledgement is awaited."""
    awaited = encounter.first_acknowledged_at is None and is_active(encounter.status)
    sending = encounter.first_alert_sent_at is None
    return FAST_POLL_MS if awaited or sending else CALM_POLL_MS


def _block_data(block: Block) -> dict[str, Any]:
    return {
        "situation": block.situation,
        "label": block.label,
        "say": block.say,
        "do": list(block.do),
        "never": list(block.never),
    }


def _pack(session: Session, encounter: Encounter) -> ScriptPack:
    assert encounter.script_version_id is not None
    return pack_by_id(session, encounter.script_version_id)


def panel_situation(session: Session, encounter: Encounter, step: str) -> str:
    """The situation whose words the "Now" panel shows on this step."""
    return _pack(session, encounter).block(step, facts_for(encounter)).situation


def desk_panel(session: Session, encounter: Encounter, step: str) -> dict[str, Any]:
    """The "Now" panel: the most urgent situation's lines, unfolded; the others folded."""
    return panel_data(_pack(session, encounter), step, facts_for(encounter))


def panel_data(pack: ScriptPack, step: str, facts: Facts) -> dict[str, Any]:
    """The "Now" panel of a pack for these facts (the desk's, and the scripts preview's)."""
    panel = pack.panel(step, facts)
    own = pack.step_block(step, facts)
    return {
        **_block_data(panel.top),
        "earlier": [_block_data(b) for b in panel.earlier],
        # The step's own question, when the panel shows something more urgent.
        "step_say": own.say if step in ASKING_STEPS and own is not panel.top else None,
    }


def document_label(encounter: Encounter) -> dict[str, Any] | None:
    """What the desk reads about the document: the office's confirmation wins."""
    value = encounter.doc_confirmed_type or encounter.doc_first_impression
    if not value:
        return None
    kind = DocType(value)
    confirmed = encounter.doc_confirmed_type is not None
    prefix = "Confirmed by the district office: " if confirmed else "First impression: "
    return {"text": prefix + DOC_LABELS[kind], "meaning": DOC_MEANING[kind], "confirmed": confirmed}


def _alert_words(
    session: Session, encounter: Encounter, now: datetime, undelivered_after: int
) -> dict[str, Any]:
    state = alert_state(session, encounter, now, undelivered_after)
    if state.state == "notified" and state.notified_at is not None:
        text = f"Office notified at {clock_time(state.notified_at, encounter.school.timezone)}"
    elif state.state == "undelivered":
        numbers = " or ".join(state.phones) or "the district office"
        text = f"Not delivered yet: call the office at {numbers}"
    else:
        text = "Notifying the office…"
    return {"state": state.state, "text": text, "phones": state.phones}


def desk_live(
    session: Session,
    encounter: Encounter,
    step: str | None,
    now: datetime,
    undelivered_after: int,
) -> dict[str, Any]:
    """Everything on a desk page that changes without the desk doing anything."""
    zone = encounter.school.timezone
    ack = first_acknowledgement(session, encounter)
    unread = int(
        session.scalar(
            select(func.count())
            .select_from(DeskMessage)
            .where(DeskMessage.encounter_id == encounter.id, DeskMessage.revealed_at.is_(None))
        )
        or 0
    )
    escalation = escalation_state(session, encounter, now)
    alert = _alert_words(session, encounter, now, undelivered_after)
    numbers = [{"label": label, "number": number} for label, number in escalation.numbers]
    if not numbers and alert["state"] == "undelivered":
        numbers = [{"label": "Call", "number": phone} for phone in alert["phones"]]
    return {
        "alert": {"state": alert["state"], "text": alert["text"]},
        "ack": None
        if ack is None
        else {
            "text": f"Acknowledged by {acknowledger_name(session, ack)} "
            f"at {clock_time(ack.at, zone)}"
        },
        "messages": {"unread": unread},
        "escalation": {
            "missed": escalation.missed,
            "level": escalation.level,
            "seconds_to_next": escalation.seconds_to_next,
            "numbers": numbers if escalation.missed else [],
        },
        # What the privacy cover still shows: what the desk must act on, and nothing more.
        "cover": {
            "numbers": [n["number"] for n in numbers]
            if escalation.missed or alert["state"] == "undelivered"
            else [],
            "message": unread > 0,
        },
        "document": document_label(encounter),
        "poll_ms": desk_pace(encounter),
        "version": desk_version(encounter, now, undelivered_after),
        "panel": desk_panel(session, encounter, step if step in STEPS else "start"),
    }
