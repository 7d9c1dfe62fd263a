"""What the desk records about a document: its row, the first impression from the desk's
answers or a common document tapped, the details, and the one follow-up to those alerted.
Each operation takes a session and plain values, flushes, and never commits."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.models import Document, Encounter
from kiosk.notify.links import Links
from kiosk.protocol import routing
from kiosk.protocol.documents import DOC_LABELS, DocType, TriageAnswers, triage
from kiosk.protocol.encounters import apply_changes, require_desk_open
from kiosk.protocol.events import Actor, record_event
from kiosk.protocol.picks import PICKS_BY_KEY, Pick


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
    require_desk_open(encounter)
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
    rows = routing.enqueue_followup(session, encounter, links, now, kinds, document, exigency)
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
    require_desk_open(encounter)
    if first_document(session, encounter) is None and not any(asdict(values).values()):
        return {}
    document = ensure_document(session, encounter, now)
    changed = apply_changes(document, asdict(values))
    if changed:
        record_event(session, encounter, "document_details", actor, now, changed)
    return changed
