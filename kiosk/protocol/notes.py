"""Counsel's privileged notes on an encounter: added, never edited; kept apart from the
record's events so that no other role, export or report learns of them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.models import Encounter, PrivilegedNote
from kiosk.protocol.encounters import OperationError


def add_privileged_note(
    session: Session, encounter: Encounter, author_user_id: int, now: datetime, text: str
) -> PrivilegedNote:
    """Keep one note by counsel on the encounter."""
    if not text.strip():
        raise OperationError("Type the note first.", field="text")
    note = PrivilegedNote(
        encounter_id=encounter.id, author_user_id=author_user_id, text=text, created_at=now
    )
    session.add(note)
    session.flush()
    return note


def privileged_notes(session: Session, encounter: Encounter) -> list[PrivilegedNote]:
    """The encounter's notes, oldest first."""
    return list(
        session.scalars(
            select(PrivilegedNote)
            .where(PrivilegedNote.encounter_id == encounter.id)
            .order_by(PrivilegedNote.created_at, PrivilegedNote.id)
        )
    )
