"""Operations on encounters. Each takes a session and plain values, flushes, never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from kiosk import vocabulary
from kiosk.db import locked
from kiosk.localtime import local
from kiosk.models import (
    Document,
    Encounter,
    Kiosk,
)
from kiosk.notify.links import Links
from kiosk.protocol import routing
from kiosk.protocol import scripts as script_rules
from kiosk.protocol.events import Actor, record_event
from kiosk.protocol.scriptstore import current_script_version
from kiosk.protocol.state import Status, is_active, move

CHANNELS = vocabulary.keys(vocabulary.CHANNELS)
PLACES = vocabulary.keys(vocabulary.PLACES)
OFFSITE_PLACES = vocabulary.OFFSITE_PLACES
REQUEST_KINDS = vocabulary.keys(vocabulary.REQUEST_KINDS)
ID_SHOWN = vocabulary.keys(vocabulary.ID_SHOWN)
# More starts than this from one kiosk within the window are flagged to the office.
BURST_STARTS = 3
BURST_WINDOW = timedelta(minutes=10)


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
    encounter.next_escalation_at = now + timedelta(minutes=kiosk.school.level2_after_minutes)
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
    rows = routing.enqueue_alert(session, encounter, links, now, level=1, new_encounter=True)
    record_event(
        session,
        encounter,
        "alert_enqueued",
        Actor.system(),
        now,
        {"level": 1, "place": place, "messages": [row.idempotency_key for row in rows]},
    )
    flag_burst(session, kiosk, encounter, now)
    return StartResult(encounter, created=True)


def flag_burst(session: Session, kiosk: Kiosk, encounter: Encounter, now: datetime) -> None:
    """Tell the office when one kiosk starts many requests in a short time.

    A real visit can need a second or third start; many more suggest a prank or a device
    in the wrong hands. The alert has gone out like any other: this only marks it.
    """
    started = session.scalar(
        select(func.count(Encounter.id)).where(
            Encounter.kiosk_id == kiosk.id, Encounter.started_at > now - BURST_WINDOW
        )
    )
    if not started or started <= BURST_STARTS:
        return
    encounter.kiosk_burst = started
    minutes = int(BURST_WINDOW.total_seconds() // 60)
    record_event(
        session,
        encounter,
        "kiosk_burst",
        Actor.system(),
        now,
        {"started": started, "minutes": minutes},
    )


def burst_notice(encounter: Encounter) -> str:
    """The office's words for a flagged start, or ''."""
    if not encounter.kiosk_burst:
        return ""
    minutes = int(BURST_WINDOW.total_seconds() // 60)
    return f"This kiosk started {encounter.kiosk_burst} requests in {minutes} minutes."


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
    require_desk_open(encounter)
    if channel not in CHANNELS:
        raise OperationError("Choose how the request is made.", field="channel")
    if place is not None and place not in PLACES:
        raise OperationError("Choose a place from the list.", field="place")
    changed = apply_changes(encounter, {"channel": channel, "place": _place_for(channel, place)})
    if not changed:
        return changed
    record_event(session, encounter, "channel_changed", actor, now, changed)
    if "place" in changed and encounter.place in OFFSITE_PLACES:
        rows = routing.enqueue_place_alert(session, encounter, links, now)
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
    require_desk_open(encounter)
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


def apply_changes(target: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Set the values that differ and return them (old values stay in earlier events)."""
    changed = {}
    for name, value in values.items():
        if getattr(target, name) != value:
            setattr(target, name, value)
            changed[name] = value
    return changed


def desk_accepts_input(encounter: Encounter) -> bool:
    return encounter.desk_closed_at is None and is_active(encounter.status)


def require_desk_open(encounter: Encounter) -> None:
    if not desk_accepts_input(encounter):
        raise DeskClosedError(encounter.id)


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
    rows = routing.enqueue_stand_down(session, encounter, links, now)
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
