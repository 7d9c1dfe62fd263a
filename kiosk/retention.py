"""Retention and legal hold: an ended encounter keeps its content for the retention period,
then `retention run` removes it, unless counsel put the encounter on legal hold.

Removing content means: every sealed column of the encounter and of its own rows (agents,
people named, documents, desk messages, late additions) emptied, each name's blind index
replaced so it no longer finds the person, and photo images dropped. The rows themselves
stay, with their categories, states and times, so counts and the timeline still read. The
audit chain and the encounter's events are never changed: events hold no free text
(kiosk.protocol.events.without_free_text), and the chain gains one `retention.purge` entry.
Every change goes through the ORM, one transaction per encounter, on the encounter loaded
locked, so a hold set at the same moment either comes first (nothing is removed) or is
refused (the content is already gone).

No Flask here: the CLI and the review pages call these operations, which flush and never
commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from kiosk import audit
from kiosk.db import locked
from kiosk.localtime import local
from kiosk.models import (
    Agent,
    DeskMessage,
    Document,
    Encounter,
    LateAddition,
    NamedPerson,
    Photo,
)
from kiosk.models.review import PrivilegedNote
from kiosk.models.sealed import REMOVED, sealed_columns
from kiosk.protocol import search
from kiosk.protocol.state import Status

# The encounter's own rows whose sealed columns are emptied. Only these: records kept
# elsewhere (FERPA request records) copy what they need and follow the student's file.
CONTENT_ROWS: tuple[type[Any], ...] = (Agent, NamedPerson, Document, DeskMessage, LateAddition)
# A blind index is 64 hex digits; this is none, so it matches no name ever searched for.
REMOVED_INDEX = "removed"
PURGE_ACTION = "retention.purge"
HOLD_ACTION = "encounter.hold"
RELEASE_ACTION = "encounter.hold_release"


class RetentionError(ValueError):
    """The hold cannot be set or released as asked; the message says why, calmly."""


@dataclass(frozen=True)
class Due:
    """An ended encounter past the retention period, not on hold, content still there."""

    id: int
    public_id: str
    ended_at: datetime


@dataclass(frozen=True)
class Purged:
    public_id: str
    ended_at: datetime
    # Rows (or, for the encounter itself, fields) whose content was removed, by table.
    counts: dict[str, int] = field(default_factory=dict)
    # Photo files kept from before photos moved into the database: removed after commit.
    files: tuple[str, ...] = ()


def cutoff(now: datetime, days: int) -> datetime:
    """Encounters that ended before this moment are past the retention period."""
    return now - timedelta(days=days)


def _due_filter(now: datetime, days: int) -> Sequence[Any]:
    return (
        Encounter.status == Status.RESOLVED.value,
        Encounter.resolved_at.is_not(None),
        Encounter.resolved_at < cutoff(now, days),
        Encounter.held_at.is_(None),
        Encounter.purged_at.is_(None),
    )


def due(session: Session, now: datetime, days: int) -> list[Due]:
    """Every encounter the next run would purge, oldest end first (reads only)."""
    rows = session.execute(
        select(Encounter.id, Encounter.public_id, Encounter.resolved_at)
        .where(*_due_filter(now, days))
        .order_by(Encounter.resolved_at, Encounter.id)
    ).all()
    return [Due(row.id, row.public_id, row.resolved_at) for row in rows]


def is_due(encounter: Encounter, now: datetime, days: int) -> bool:
    return (
        encounter.status == Status.RESOLVED
        and encounter.resolved_at is not None
        and encounter.resolved_at < cutoff(now, days)
        and encounter.held_at is None
        and encounter.purged_at is None
    )


def _empty_sealed(row: Any) -> bool:
    """Empty every sealed column of the row; True if it held any content."""
    had = False
    for key in sealed_columns(type(row)):
        value = getattr(row, key)
        if value is None or value == REMOVED:
            continue
        had = True
        column = type(row).__table__.c[key]
        setattr(row, key, None if column.nullable else REMOVED)
    return had


def purge(
    session: Session,
    encounter_id: int,
    now: datetime,
    days: int,
    audit_key: str,
    actor: str,
    index_key: str,
) -> Purged | None:
    """Remove one encounter's content if it is still due, decided on the row loaded locked;
    None if it is not due any more (held, purged or reopened meanwhile)."""
    encounter = locked(session, Encounter, encounter_id)
    if encounter is None or not is_due(encounter, now, days):
        return None
    assert encounter.resolved_at is not None  # is_due checked it
    counts: dict[str, int] = {"encounters": 1 if _empty_sealed(encounter) else 0}
    for model in CONTENT_ROWS:
        rows = session.scalars(
            select(model).where(model.encounter_id == encounter.id).order_by(model.id)
        ).all()
        redacted = 0
        for row in rows:
            changed = _empty_sealed(row)
            if isinstance(row, NamedPerson) and row.name_index != REMOVED_INDEX:
                row.name_index = REMOVED_INDEX
                changed = True
            redacted += int(changed)
        counts[model.__tablename__] = redacted
    files: list[str] = []
    photos = session.scalars(
        select(Photo)
        .where(Photo.encounter_id == encounter.id)
        .options(undefer(Photo.content))
        .order_by(Photo.id)
    ).all()
    removed_photos = 0
    for photo in photos:
        if photo.content is None and photo.stored_name is None:
            continue
        if photo.stored_name is not None:
            files.append(photo.stored_name)
        photo.content = None
        photo.stored_name = None
        removed_photos += 1
    counts["photos"] = removed_photos
    # Counsel's privileged notes go with the rest of the content.
    notes = session.scalars(
        select(PrivilegedNote).where(PrivilegedNote.encounter_id == encounter.id)
    ).all()
    counts["privileged_notes"] = sum(int(_empty_sealed(note)) for note in notes)
    encounter.purged_at = now
    session.flush()
    # The search index is rebuilt from what is left (the agency), so no removed name or word
    # can still find the encounter.
    search.reindex(session, encounter, index_key)
    audit.record(
        session,
        audit_key,
        now,
        actor=actor,
        action=PURGE_ACTION,
        subject=f"encounter:{encounter.public_id}",
        details=counts,
    )
    return Purged(encounter.public_id, encounter.resolved_at, counts, tuple(files))


def set_hold(
    session: Session,
    encounter_id: int,
    now: datetime,
    reason: str,
    user_id: int | None,
    audit_key: str,
    actor: str,
) -> bool:
    """Put the encounter on legal hold (or restate the reason of a hold already set);
    False if it was already held with that reason. Refused once the content is removed."""
    encounter = locked(session, Encounter, encounter_id)
    if encounter is None:
        raise RetentionError("There is no such record.")
    if encounter.purged_at is not None:
        raise RetentionError(
            "The content of this record was already removed under the retention policy; "
            "a hold can no longer keep it."
        )
    reason = reason.strip()
    if not reason:
        raise RetentionError("Give the reason for the hold.")
    was_held = encounter.held_at is not None
    if was_held and encounter.hold_reason == reason:
        return False
    if not was_held:
        encounter.held_at = now
        encounter.held_by_user_id = user_id
    encounter.hold_reason = reason
    session.flush()
    # The reason is free text: the entry says only that it was given or changed.
    audit.record(
        session,
        audit_key,
        now,
        actor=actor,
        action=HOLD_ACTION,
        subject=f"encounter:{encounter.public_id}",
        details={"hold": "reason_changed" if was_held else "set"},
    )
    return True


def release_hold(
    session: Session, encounter_id: int, now: datetime, audit_key: str, actor: str
) -> bool:
    """Release the legal hold; False if there was none. The retention period then applies
    again from the encounter's end, so an old record is purged at the next run."""
    encounter = locked(session, Encounter, encounter_id)
    if encounter is None:
        raise RetentionError("There is no such record.")
    if encounter.held_at is None:
        return False
    held_since = encounter.held_at
    encounter.held_at = None
    encounter.held_by_user_id = None
    encounter.hold_reason = None
    session.flush()
    audit.record(
        session,
        audit_key,
        now,
        actor=actor,
        action=RELEASE_ACTION,
        subject=f"encounter:{encounter.public_id}",
        details={"held_days": max(0, (now - held_since).days)},
    )
    return True


def removal_notice(encounter: Encounter) -> str:
    """What pages show where a purged encounter's content was; "" for one not purged."""
    if encounter.purged_at is None:
        return ""
    day = local(encounter.purged_at, encounter.school.timezone).strftime("%Y-%m-%d")
    return f"Content removed under the retention policy on {day}."


def find_id(session: Session, public_id: str) -> int | None:
    return session.scalar(select(Encounter.id).where(Encounter.public_id == public_id))
