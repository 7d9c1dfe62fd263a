"""Operations of the district office on an encounter. Each flushes and never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.models import Acknowledgement, DeskMessage, Document, Encounter
from kiosk.protocol.document_record import ensure_document
from kiosk.protocol.documents import DocType
from kiosk.protocol.encounters import OperationError
from kiosk.protocol.events import Actor, record_event
from kiosk.protocol.state import Status, is_active, move

DESK_MESSAGE_PRESETS = {
    "on_my_way": "I am on my way. Please ask them to wait in the lobby.",
    "will_call": "I will call the desk in a few minutes.",
    "wait_lobby": "Please ask them to wait in the lobby while the district office reviews this.",
    "photo_document": "Please photograph the document, if there is one, and add it to the record.",
    "nothing_released": "Please release nothing and allow no access; the district office is "
    "handling this.",
}
CONSENT_RESULTS = ("confirmed", "denied", "unreachable", "not_applicable")
GUARDIAN_NOTICES = ("notified", "not_notified")
DESK_MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class AckResult:
    acknowledgement: Acknowledgement | None
    first: bool
    already_at: datetime | None = None


def acknowledge(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    channel: str,
    contact_id: int | None = None,
    user_id: int | None = None,
) -> AckResult:
    """Record an acknowledgement; the first one stops escalation and tells the desk."""
    previous = session.scalar(
        select(Acknowledgement)
        .where(
            Acknowledgement.encounter_id == encounter.id,
            (Acknowledgement.contact_id == contact_id)
            if contact_id is not None
            else (Acknowledgement.user_id == user_id),
        )
        .order_by(Acknowledgement.at)
        .limit(1)
    )
    if previous is not None:
        return AckResult(None, first=False, already_at=previous.at)
    if encounter.status == Status.STOOD_DOWN:
        raise OperationError("This alert was stood down as started by mistake.")
    _require_active(encounter)
    ack = Acknowledgement(
        encounter_id=encounter.id,
        contact_id=contact_id,
        user_id=user_id,
        channel=channel,
        at=now,
    )
    session.add(ack)
    first = encounter.first_acknowledged_at is None
    if first:
        encounter.first_acknowledged_at = now
        window = timedelta(minutes=encounter.school.level2_after_minutes)
        encounter.acknowledged_late = now - encounter.started_at > window
        encounter.next_escalation_at = None
        if encounter.status == Status.OPEN:
            encounter.status = move(encounter.status, Status.ACKNOWLEDGED)
    session.flush()
    record_event(
        session,
        encounter,
        "acknowledged",
        actor,
        now,
        {"channel": channel, "contact": contact_id, "user": user_id, "first": first},
    )
    return AckResult(ack, first=first)


ENDED = (
    "This encounter has ended (resolved, stood down or abandoned): nothing on it "
    "can be changed now. Anything the desk sends later is kept as a note after resolution."
)


def _require_active(encounter: Encounter) -> None:
    """Refuse every change once the encounter has ended."""
    if not is_active(encounter.status):
        raise OperationError(ENDED)


def send_desk_message(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    preset: str | None,
    text: str | None,
) -> DeskMessage:
    """Send a short, neutral instruction to the desk; the kiosk reveals it on a tap."""
    _require_active(encounter)
    if preset:
        if preset not in DESK_MESSAGE_PRESETS:
            raise OperationError("Choose one of the messages offered.", field="preset")
        body = DESK_MESSAGE_PRESETS[preset]
    else:
        body = (text or "").strip()
        if not body:
            raise OperationError("Choose a message or write one.", field="text")
    message = DeskMessage(
        encounter_id=encounter.id,
        preset=preset or None,
        text=body[:DESK_MESSAGE_LIMIT],
        sender_label=actor.label[:200],
        user_id=actor.user_id,
        sent_at=now,
    )
    session.add(message)
    session.flush()
    record_event(
        session,
        encounter,
        "desk_message_sent",
        actor,
        now,
        {"message": message.id, "preset": preset or None, "text": message.text},
    )
    return message


def reveal_desk_messages(
    session: Session, encounter: Encounter, actor: Actor, now: datetime
) -> list[DeskMessage]:
    """Mark the desk's unread messages as shown, and return every message in order."""
    messages = list(
        session.scalars(
            select(DeskMessage)
            .where(DeskMessage.encounter_id == encounter.id)
            .order_by(DeskMessage.sent_at, DeskMessage.id)
        )
    )
    unread = [m for m in messages if m.revealed_at is None]
    for message in unread:
        message.revealed_at = now
    if unread:
        record_event(
            session,
            encounter,
            "desk_message_shown",
            actor,
            now,
            {"messages": [m.id for m in unread]},
        )
    return messages


def confirm_document(
    session: Session, encounter: Encounter, actor: Actor, now: datetime, doc_type: str
) -> Document:
    """The district office decides what the document is; the desk's impression stays too."""
    _require_active(encounter)
    try:
        confirmed = DocType(doc_type)
    except ValueError as exc:
        raise OperationError("Choose a document type.", field="doc_type") from exc
    document = ensure_document(session, encounter, now)
    document.confirmed_type = confirmed.value
    document.confirmed_by_user_id = actor.user_id
    document.confirmed_at = now
    encounter.doc_confirmed_type = confirmed.value
    session.flush()
    record_event(
        session,
        encounter,
        "document_confirmed",
        actor,
        now,
        {"confirmed_type": confirmed.value, "first_impression": document.first_impression},
    )
    return document


def mark_time(
    session: Session, encounter: Encounter, actor: Actor, now: datetime, what: str
) -> None:
    """Record 'designee on scene' or 'counsel contacted' (once; later taps change nothing)."""
    _require_active(encounter)
    column = {"on_scene": "designee_on_scene_at", "counsel": "counsel_contacted_at"}[what]
    if getattr(encounter, column) is not None:
        return
    setattr(encounter, column, now)
    record_event(session, encounter, f"{column.removesuffix('_at')}", actor, now, {})


def record_consent_check(
    session: Session, encounter: Encounter, actor: Actor, now: datetime, result: str
) -> None:
    """Record the result of checking a claimed parental consent directly with the guardian."""
    _require_active(encounter)
    if result not in CONSENT_RESULTS:
        raise OperationError("Choose a result.", field="result")
    encounter.consent_check = result
    encounter.consent_checked_at = now
    record_event(session, encounter, "consent_checked", actor, now, {"result": result})


def record_guardian_notice(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    notice: str,
    notified_at: datetime | None,
    by: str | None,
    reason: str | None,
) -> None:
    """Record that the parent or guardian was notified (when, by whom), or why not."""
    _require_active(encounter)
    if notice not in GUARDIAN_NOTICES:
        raise OperationError("Choose whether the parent or guardian was notified.", "notice")
    if notice == "not_notified" and not (reason or "").strip():
        raise OperationError("Say why the parent or guardian was not notified.", "reason")
    encounter.guardian_notice = notice
    encounter.guardian_notified_at = notified_at if notice == "notified" else None
    encounter.guardian_notice_by = by if notice == "notified" else None
    encounter.guardian_notice_reason = reason if notice == "not_notified" else None
    record_event(
        session,
        encounter,
        "guardian_notice",
        actor,
        now,
        {
            "notice": notice,
            "notified_at": notified_at.isoformat() if notified_at else None,
            "by": by,
            "reason": reason,
        },
    )


def record_care(
    session: Session, encounter: Encounter, actor: Actor, now: datetime, text: str | None
) -> None:
    """Record how the district office arranged care for a child whose parent was sought."""
    _require_active(encounter)
    body = (text or "").strip()
    if not body:
        raise OperationError("Say how the child's care was arranged.", field="care")
    encounter.care_arranged = body
    encounter.care_arranged_at = now
    # The text may name people: the event says only that it was recorded.
    record_event(session, encounter, "care_arranged", actor, now, {})


def close_stood_down(session: Session, encounter: Encounter, actor: Actor, now: datetime) -> None:
    """Close a stand-down the office has checked: it leaves the list of open encounters."""
    if encounter.status != Status.STOOD_DOWN:
        raise OperationError("Only an alert stood down at the desk can be closed this way.")
    encounter.status = move(encounter.status, Status.RESOLVED)
    encounter.resolved_at = now
    encounter.next_escalation_at = None
    record_event(session, encounter, "stand_down_closed", actor, now, {})


def reopen(session: Session, encounter: Encounter, actor: Actor, now: datetime) -> None:
    """Reopen an alert stood down at the desk; escalation resumes where it stood.

    The desk's part stays closed (the kiosk may already serve a new visitor); the time of
    the stand-down stays in the record.
    """
    if encounter.status != Status.STOOD_DOWN:
        raise OperationError("Only an alert stood down at the desk can be reopened.")
    acknowledged = encounter.first_acknowledged_at is not None
    encounter.status = move(encounter.status, Status.ACKNOWLEDGED if acknowledged else Status.OPEN)
    if not acknowledged:
        school = encounter.school
        minutes = (
            school.level2_after_minutes
            if encounter.escalation_level < 2
            else school.level3_after_minutes
        )
        encounter.next_escalation_at = max(encounter.started_at + timedelta(minutes=minutes), now)
    record_event(
        session,
        encounter,
        "reopened",
        actor,
        now,
        {"next_escalation_at": encounter.next_escalation_at},
    )


def resolve(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    now: datetime,
    outcome: str | None,
    notes: str | None,
) -> None:
    """Close the encounter; the kiosk returns to idle if the desk has not done so."""
    _require_active(encounter)
    encounter.status = move(encounter.status, Status.RESOLVED)
    encounter.resolved_at = now
    encounter.next_escalation_at = None
    if outcome:
        encounter.outcome = outcome
    encounter.resolution_notes = notes
    record_event(session, encounter, "resolved", actor, now, {"outcome": outcome, "notes": notes})
