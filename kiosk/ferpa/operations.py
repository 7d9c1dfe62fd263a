"""FERPA operations: match a named person, keep the 99.32 request record, track the parent
notice. No Flask here: each takes a session and plain values, flushes, and never commits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.db import locked
from kiosk.localtime import local
from kiosk.models import (
    Agent,
    Document,
    Encounter,
    NamedPerson,
    PersonMatch,
    RequestRecord,
    Student,
)
from kiosk.protocol.documents import DOC_LABELS, DocType
from kiosk.protocol.encounters import OperationError
from kiosk.sealing import blind_index
from kiosk.vocabulary import AGENCIES, labels

OUTCOMES = (
    ("existing", "An enrolled student already in the records"),
    ("new", "An enrolled student not yet in the records (add them)"),
    ("not_student", "Not a student (a parent, staff member or someone else)"),
    ("not_enrolled", "A student not enrolled in the district"),
    ("unknown", "Unknown: cannot tell who this is"),
)
# What a match row keeps: "existing" and "new" both end as a match to a student.
STORED_OUTCOMES = ("student", "not_student", "not_enrolled", "unknown")
OUTCOME_LABELS = {
    "student": "Matched to a student",
    "not_student": "Not a student",
    "not_enrolled": "Not enrolled in the district",
    "unknown": "Unknown",
}

# Under which exception of 34 CFR 99.31 anything was released (see PROTOCOL.md, FERPA).
EXCEPTIONS = (
    ("none", "None: nothing was released"),
    ("subpoena_notice", "Judicial order or lawfully issued subpoena, parent notified in advance"),
    ("subpoena_nondisclosure", "Judicial order or subpoena that orders non-disclosure"),
    ("emergency", "Health or safety emergency (99.36): threat and recipients described"),
    ("directory", "Directory information the parent did not opt out of"),
    ("consent", "Signed, dated written consent of the parent"),
    ("other", "Another exception, described in what was released"),
)
EXCEPTION_LABELS = dict(EXCEPTIONS)
NOTICE_METHODS = (
    ("letter", "Letter"),
    ("email", "Email"),
    ("phone", "Phone call"),
    ("in_person", "In person"),
)
# Documents that ask for records under a court's or agency's compulsion: the parent is told
# in advance (99.31(a)(9)(ii)), unless counsel records a non-disclosure order.
NOTICE_DOCUMENTS = frozenset(
    {DocType.JUDICIAL_SUBPOENA.value, DocType.GRAND_JURY_SUBPOENA.value, DocType.DHS_SUBPOENA.value}
)
OTHER_PERSON = "[another person named]"
NOTHING_WORDS = frozenset({"nothing", "none", "nothing was released", "no records"})


@dataclass(frozen=True)
class MatchInput:
    """An official's decision about one named person."""

    outcome: str
    student_public_id: str | None = None
    new_name: str | None = None
    new_school_id: int | None = None
    new_local_id: str | None = None


@dataclass(frozen=True)
class RecordInput:
    basis: str
    released: str
    exception: str
    # When the parent notice is due; None tracks no notice (refused for a subpoena).
    notice_due_on: date | None = None


@dataclass(frozen=True)
class NoticeInput:
    sent_on: date
    method: str


def current_match(session: Session, person_id: int) -> PersonMatch | None:
    return session.scalar(
        select(PersonMatch).where(
            PersonMatch.named_person_id == person_id, PersonMatch.superseded_at.is_(None)
        )
    )


def record_of_match(session: Session, match_id: int) -> RequestRecord | None:
    return session.scalar(select(RequestRecord).where(RequestRecord.match_id == match_id))


def add_student(
    session: Session,
    index_key: str,
    school_id: int,
    name: str,
    local_id: str | None,
    user_id: int,
    now: datetime,
) -> Student:
    student = Student(
        school_id=school_id,
        name=name,
        name_index=blind_index(index_key, name),
        local_id=local_id or None,
        created_by_user_id=user_id,
        created_at=now,
    )
    session.add(student)
    session.flush()
    return student


def match_person(
    session: Session,
    index_key: str,
    person_id: int,
    values: MatchInput,
    user_id: int,
    now: datetime,
    notice_days: int,
) -> tuple[PersonMatch, RequestRecord | None, bool]:
    """Record what the named person is, and say whether anything changed: a decision that
    changes nothing adds no row; a
    changed one supersedes the last, and withdraws its request record from that student's
    file. A match to a student makes the 99.32 request record."""
    person = locked(session, NamedPerson, person_id)
    if person is None:
        raise OperationError("There is no such person in this record.")
    encounter = session.get(Encounter, person.encounter_id)
    if encounter is None:
        raise OperationError("There is no such record.")
    student: Student | None = None
    if values.outcome == "existing":
        student = session.scalar(
            select(Student).where(Student.public_id == (values.student_public_id or ""))
        )
        if student is None:
            raise OperationError("Choose a student from the list.", "student")
    elif values.outcome == "new":
        if not values.new_name:
            raise OperationError("Enter the student's name as enrolled.", "new_name")
        if values.new_school_id is None:
            raise OperationError("Choose the student's school.", "new_school")
        student = add_student(
            session,
            index_key,
            values.new_school_id,
            values.new_name,
            values.new_local_id,
            user_id,
            now,
        )
    elif values.outcome not in STORED_OUTCOMES:
        raise OperationError("Choose what this person is.", "outcome")
    stored = "student" if student is not None else values.outcome
    previous = current_match(session, person.id)
    if (
        previous is not None
        and previous.outcome == stored
        and previous.student_id == (student.id if student else None)
    ):
        return previous, record_of_match(session, previous.id), False
    if previous is not None:
        previous.superseded_at = now
        earlier = record_of_match(session, previous.id)
        if earlier is not None and earlier.withdrawn_at is None:
            earlier.withdrawn_at = now
    match = PersonMatch(
        named_person_id=person.id,
        encounter_id=encounter.id,
        outcome=stored,
        student_id=student.id if student else None,
        decided_by_user_id=user_id,
        decided_at=now,
    )
    session.add(match)
    session.flush()
    record = None
    if student is not None:
        record = _new_record(session, encounter, person, student, match, notice_days, now)
    return match, record, True


def _new_record(
    session: Session,
    encounter: Encounter,
    person: NamedPerson,
    student: Student,
    match: PersonMatch,
    notice_days: int,
    now: datetime,
) -> RequestRecord:
    """Copy what the 99.32 record needs from the encounter, with the other people named in
    it taken out of every copied text."""
    others = [
        p.name
        for p in session.scalars(
            select(NamedPerson).where(
                NamedPerson.encounter_id == encounter.id, NamedPerson.id != person.id
            )
        )
    ]
    agents = list(
        session.scalars(
            select(Agent).where(Agent.encounter_id == encounter.id).order_by(Agent.position)
        )
    )
    documents = list(
        session.scalars(
            select(Document)
            .where(Document.encounter_id == encounter.id)
            .order_by(Document.position)
        )
    )
    document_type = encounter.doc_confirmed_type or encounter.doc_first_impression
    notice = document_type in NOTICE_DOCUMENTS
    requested_on = local(encounter.started_at, encounter.school.timezone).date()
    record = RequestRecord(
        student_id=student.id,
        match_id=match.id,
        encounter_public_id=encounter.public_id,
        school_id=encounter.school_id,
        requested_at=encounter.started_at,
        channel=encounter.channel,
        request_kinds=encounter.request_kinds or "",
        document_type=document_type,
        requester=without_others(_requester(agents), others),
        agency=_agencies(agents)[:400],
        basis=without_others(_basis(encounter, documents, document_type), others),
        released="Nothing",
        exception="none",
        notice_required=notice,
        notice_due_on=requested_on + timedelta(days=notice_days) if notice else None,
        created_at=now,
    )
    session.add(record)
    session.flush()
    return record


def without_others(text: str, others: list[str]) -> str:
    """Replace every other named person's name, and each word of it of three letters or
    more, so a copy for one student's file never names another person of the encounter."""
    words: set[str] = set()
    for name in others:
        if name.strip():
            words.add(name.strip())
            words.update(w for w in re.split(r"[\s,]+", name) if len(w) >= 3)
    # Longest first, so a full name is replaced whole before its parts are.
    for word in sorted(words, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", OTHER_PERSON, text, flags=re.IGNORECASE)
    return text


def _requester(agents: list[Agent]) -> str:
    lines = []
    for agent in agents:
        parts = [agent.name or "Name not recorded"]
        if agent.title:
            parts.append(agent.title)
        if agent.badge_number:
            parts.append(f"badge {agent.badge_number}")
        if agent.phone:
            parts.append(f"phone {agent.phone}")
        lines.append(", ".join(parts))
    return "\n".join(lines) or "Not recorded"


def _agencies(agents: list[Agent]) -> str:
    picks = labels(AGENCIES)
    seen: list[str] = []
    for agent in agents:
        agency = agent.agency_printed or picks.get(agent.agency_pick or "", "")
        if agency and agency not in seen:
            seen.append(agency)
    return "; ".join(seen) or "Not recorded"


def _basis(encounter: Encounter, documents: list[Document], document_type: str | None) -> str:
    lines = []
    if encounter.purpose:
        lines.append(f"Stated purpose: {encounter.purpose}")
    if document_type:
        label = DOC_LABELS.get(DocType(document_type), document_type)
        confirmed = " (confirmed)" if encounter.doc_confirmed_type else " (first impression)"
        lines.append(f"Document: {label}{confirmed}")
    for document in documents:
        details = [
            f"issued by {document.issuer}" if document.issuer else "",
            f"case {document.case_number}" if document.case_number else "",
            f"dates {document.dates}" if document.dates else "",
        ]
        if any(details):
            lines.append("Document details: " + "; ".join(d for d in details if d))
    return "\n".join(lines) or "No document shown and no purpose recorded."


def lock_record(session: Session, record_id: int) -> RequestRecord:
    record = locked(session, RequestRecord, record_id)
    if record is None or record.withdrawn_at is not None:
        raise OperationError("This request record is no longer in a student's file.")
    return record


def update_record(
    session: Session, record_id: int, values: RecordInput, user_id: int, now: datetime
) -> list[str]:
    """Save the official's corrections; return the names of the fields that changed."""
    if values.exception not in EXCEPTION_LABELS:
        raise OperationError("Choose an exception from the list.", "exception")
    nothing = values.released.strip().rstrip(".").lower() in NOTHING_WORDS
    if values.exception == "none" and not nothing:
        raise OperationError(
            'Choose the exception it was released under, or write "Nothing".', "exception"
        )
    if values.exception != "none" and nothing:
        raise OperationError("Say what was released under this exception, and to whom.", "released")
    record = lock_record(session, record_id)
    if values.notice_due_on is None and record.document_type in NOTICE_DOCUMENTS:
        raise OperationError(
            "A subpoena or court order needs a date for the parent notice.", "notice_due_on"
        )
    changed = []
    for name in ("basis", "released", "exception", "notice_due_on"):
        if getattr(record, name) != getattr(values, name):
            setattr(record, name, getattr(values, name))
            changed.append(name)
    record.notice_required = record.notice_due_on is not None
    if changed:
        record.updated_by_user_id = user_id
        record.updated_at = now
        session.flush()
    return changed


def record_notice(
    session: Session, record_id: int, values: NoticeInput, user_id: int, now: datetime, today: date
) -> None:
    """Mark the parent notice sent: on which day, and how."""
    if values.method not in dict(NOTICE_METHODS):
        raise OperationError("Choose how the notice was sent.", "method")
    if values.sent_on > today:
        raise OperationError("This date is in the future.", "sent_on")
    record = lock_record(session, record_id)
    if not record.notice_required:
        raise OperationError("No parent notice is tracked for this request.")
    record.notice_sent_on = values.sent_on
    record.notice_method = values.method
    record.notice_recorded_by_user_id = user_id
    record.notice_recorded_at = now
    session.flush()


def set_nondisclosure(
    session: Session, record_id: int, value: bool, user_id: int, now: datetime
) -> bool:
    """Set or clear counsel's non-disclosure flag; return whether it changed."""
    record = lock_record(session, record_id)
    if record.nondisclosure == value:
        return False
    record.nondisclosure = value
    record.nondisclosure_by_user_id = user_id
    record.nondisclosure_at = now
    session.flush()
    return True
