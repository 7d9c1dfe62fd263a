"""Read-side queries of FERPA records, shared by the pages and the files (and an API later).

A student's rows come only from that student's request records, which hold their own
copies: nothing here reads the encounter, so another person it names never appears.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session, joinedload

from kiosk.ferpa.operations import EXCEPTION_LABELS, NOTICE_METHODS
from kiosk.localtime import local
from kiosk.models import RequestRecord, School, Student
from kiosk.protocol.documents import DOC_LABELS, DocType
from kiosk.vocabulary import CHANNELS, REQUEST_KINDS, labels

COLUMNS = (
    "record_id",
    "student_id",
    "local_student_id",
    "school",
    "requested_on",
    "requested_at_utc",
    "channel",
    "requested",
    "requester",
    "agency",
    "document",
    "basis",
    "released",
    "exception",
    "parent_notice",
)


def student_records(session: Session, student: Student, parent_copy: bool) -> list[RequestRecord]:
    """Every request record in the student's file, oldest first. A parent's copy leaves out
    those counsel marked as under a non-disclosure order."""
    query = (
        select(RequestRecord)
        .where(RequestRecord.student_id == student.id, RequestRecord.withdrawn_at.is_(None))
        .order_by(RequestRecord.requested_at, RequestRecord.id)
    )
    if parent_copy:
        query = query.where(RequestRecord.nondisclosure.is_(False))
    return list(session.scalars(query))


# The parent notice's states, as the API names them (notice_state gives them in words).
NOTICE_STATES = ("not_required", "suppressed", "sent", "due", "overdue")
PAGE_SIZE = 50


def notice_key(record: RequestRecord, today: date) -> str:
    """The parent notice's state, in the same order of precedence as notice_state."""
    if not record.notice_required:
        return "not_required"
    if record.nondisclosure:
        return "suppressed"
    if record.notice_sent_on is not None:
        return "sent"
    due = record.notice_due_on
    return "overdue" if due is not None and due < today else "due"


def notice_state(record: RequestRecord, today: date) -> str:
    """The parent notice in words: not tracked, suppressed, sent, due, or overdue."""
    if not record.notice_required:
        return "Not required for this kind of request"
    if record.nondisclosure:
        return "Not sent: a non-disclosure order applies (recorded by counsel)"
    if record.notice_sent_on is not None:
        method = dict(NOTICE_METHODS).get(record.notice_method or "", record.notice_method)
        return f"Sent on {record.notice_sent_on.isoformat()} ({method})"
    due = record.notice_due_on
    if due is not None and due < today:
        return f"Overdue since {due.isoformat()}"
    return f"Due by {due.isoformat()}" if due else "Due"


def row(record: RequestRecord, student: Student, today: date) -> dict[str, Any]:
    """One request record as the student's file shows and exports it."""
    school: School = record.school
    kinds = labels(REQUEST_KINDS)
    requested = [kinds.get(k, k) for k in (record.request_kinds or "").split(",") if k]
    document = (
        DOC_LABELS.get(DocType(record.document_type), record.document_type)
        if record.document_type
        else "None recorded"
    )
    return {
        "record_id": record.public_id,
        "student_id": student.public_id,
        "local_student_id": student.local_id or "",
        "school": school.name,
        "requested_on": local(record.requested_at, school.timezone).date().isoformat(),
        "requested_at_utc": record.requested_at.isoformat().replace("+00:00", "Z"),
        "channel": labels(CHANNELS).get(record.channel, record.channel),
        "requested": "; ".join(requested) or "Not recorded",
        "requester": record.requester,
        "agency": record.agency,
        "document": document,
        "basis": record.basis,
        "released": record.released,
        "exception": EXCEPTION_LABELS.get(record.exception, record.exception),
        "parent_notice": notice_state(record, today),
    }


def pending_notices(session: Session, school_ids: set[int] | None) -> list[RequestRecord]:
    """Parent notices not yet sent and not suppressed, the earliest due first."""
    query = (
        select(RequestRecord)
        .where(
            RequestRecord.notice_required.is_(True),
            RequestRecord.nondisclosure.is_(False),
            RequestRecord.notice_sent_on.is_(None),
            RequestRecord.withdrawn_at.is_(None),
        )
        .order_by(RequestRecord.notice_due_on, RequestRecord.id)
    )
    if school_ids is not None:
        query = query.where(RequestRecord.school_id.in_(school_ids or {-1}))
    return list(session.scalars(query))


@dataclass(frozen=True)
class RecordFilters:
    """What the request records are narrowed to, already checked: empty strings mean "any".
    Dates are UTC dates of the request, as in the review log's filters."""

    school_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    exception: str = ""
    released: str = ""
    notice: str = ""
    after: tuple[datetime, int] | None = None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _notice_condition(state: str, todays: dict[int, date]) -> Any:
    """The records whose notice is in this state; due and overdue depend on the day in each
    school's own time zone (todays: school id to that school's date)."""
    R = RequestRecord  # noqa: N806
    if state == "not_required":
        return R.notice_required.is_(False)
    required = R.notice_required.is_(True)
    if state == "suppressed":
        return and_(required, R.nondisclosure.is_(True))
    open_notice = and_(required, R.nondisclosure.is_(False))
    if state == "sent":
        return and_(open_notice, R.notice_sent_on.is_not(None))
    unsent = and_(open_notice, R.notice_sent_on.is_(None))
    overdue = or_(
        false(),
        *(and_(R.school_id == school, R.notice_due_on < today) for school, today in todays.items()),
    )
    return and_(unsent, overdue if state == "overdue" else ~overdue)


def record_page(
    session: Session, school_ids: set[int] | None, filters: RecordFilters, todays: dict[int, date]
) -> tuple[list[RequestRecord], bool]:
    """One page of the request records still in a student's file, newest request first,
    following the page before by key (requested_at, id); and whether another follows."""
    query = select(RequestRecord).where(RequestRecord.withdrawn_at.is_(None))
    if school_ids is not None:
        query = query.where(RequestRecord.school_id.in_(school_ids or {-1}))
    if filters.school_id is not None:
        query = query.where(RequestRecord.school_id == filters.school_id)
    if filters.date_from is not None:
        query = query.where(RequestRecord.requested_at >= _start_of(filters.date_from))
    if filters.date_to is not None and filters.date_to < date.max:
        end = _start_of(filters.date_to + timedelta(days=1))
        query = query.where(RequestRecord.requested_at < end)
    if filters.exception:
        query = query.where(RequestRecord.exception == filters.exception)
    if filters.released:
        nothing = RequestRecord.exception == "none"
        query = query.where(~nothing if filters.released == "yes" else nothing)
    if filters.notice:
        query = query.where(_notice_condition(filters.notice, todays))
    if filters.after is not None:
        started, row_id = filters.after
        query = query.where(
            RequestRecord.requested_at <= started,
            or_(RequestRecord.requested_at < started, RequestRecord.id < row_id),
        )
    rows = list(
        session.scalars(
            query.options(joinedload(RequestRecord.student), joinedload(RequestRecord.school))
            .order_by(RequestRecord.requested_at.desc(), RequestRecord.id.desc())
            .limit(PAGE_SIZE + 1)
        )
    )
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
