"""The API's FERPA routes: the 99.32 request records, for the district officials who keep
them (ferpa.read: reviewers and counsel), scoped like the FERPA pages.

A record is one student's: it names that student (as the student's file does for an
official) and never another person of the same encounter, whose names were taken out of
every copied text when it was made (kiosk.ferpa.operations.without_others). The student's
records come from kiosk.ferpa.reads, as the file and its exports do, with the same parent's
copy. Counsel's privileged notes belong to encounters and never appear here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, jsonify, request, url_for
from sqlalchemy import select
from wtforms import DateField
from wtforms.validators import Optional

from kiosk import webdb
from kiosk.api.blueprint import bp
from kiosk.api.views import PUBLIC_ID, utc
from kiosk.auth.policy import api_refusal, api_user, may, schools_for, token_required
from kiosk.clock import now_utc
from kiosk.ferpa import reads
from kiosk.ferpa.operations import EXCEPTION_LABELS, EXCEPTIONS
from kiosk.forms import options
from kiosk.localtime import local
from kiosk.models import RequestRecord, School, Student
from kiosk.review import log
from kiosk.review.forms import (
    ANY,
    YES_NO,
    ListChoice,
    PeriodFilterForm,
    make_cursor,
    parse_cursor,
)

FERPA_READ = "ferpa.read"
FILTER_NAMES = ("school", "date_from", "date_to", "exception", "released", "notice")
NOTICE_CHOICES = [ANY, *((state, state) for state in reads.NOTICE_STATES)]


class RecordFilterForm(PeriodFilterForm):
    """The request records' filters, from the query string: categories and dates only."""

    date_from = DateField("Requested on or after (UTC date)", [Optional()], format="%Y-%m-%d")
    date_to = DateField("Requested on or before (UTC date)", [Optional()], format="%Y-%m-%d")
    exception = ListChoice(
        "Exception released under", choices=options([ANY, *EXCEPTIONS]), default=""
    )
    released = ListChoice("Anything released", choices=options(YES_NO), default="")
    notice = ListChoice("Parent notice", choices=options(NOTICE_CHOICES), default="")


def _exists(model: type[RequestRecord] | type[Student], public_id: str) -> bool:
    return bool(
        PUBLIC_ID.match(public_id)
        and webdb.session().scalar(select(model.id).where(model.public_id == public_id))
    )


def _list_subject() -> str:
    return "ferpa_records"


def _record_subject(public_id: str) -> str:
    """A record's id only if there is one, never what was typed (it could be a name)."""
    return f"request_record:{public_id if _exists(RequestRecord, public_id) else '(no such id)'}"


def _student_subject(public_id: str) -> str:
    return f"student:{public_id if _exists(Student, public_id) else '(no such id)'}"


COPIES = ("file", "parent")


def _copy() -> str:
    return "parent" if request.args.get("copy") == "parent" else "file"


def _copy_details() -> dict[str, Any]:
    return {"copy": _copy()}


def _today(school: School) -> date:
    return local(now_utc(), school.timezone).date()


def _student(student: Student) -> dict[str, Any]:
    return {"public_id": student.public_id, "local_id": student.local_id, "name": student.name}


def record_json(record: RequestRecord, today: date) -> dict[str, Any]:
    """One request record: its keys for a program, and the words the student's file shows."""
    school: School = record.school
    words = reads.row(record, record.student, today)
    return {
        "public_id": record.public_id,
        "student": _student(record.student),
        "school": {"public_id": school.public_id, "name": school.name},
        "encounter_public_id": record.encounter_public_id,
        "requested_at": utc(record.requested_at),
        "requested_on": words["requested_on"],
        "channel": record.channel,
        "request_kinds": [kind for kind in (record.request_kinds or "").split(",") if kind],
        "document_type": record.document_type,
        "requester": record.requester,
        "agency": record.agency,
        "basis": record.basis,
        "released": record.released,
        "exception": record.exception,
        "exception_label": EXCEPTION_LABELS.get(record.exception, record.exception),
        "released_anything": record.exception != "none",
        "notice": {
            "state": reads.notice_key(record, today),
            "text": words["parent_notice"],
            "due_on": record.notice_due_on.isoformat() if record.notice_due_on else None,
            "sent_on": record.notice_sent_on.isoformat() if record.notice_sent_on else None,
            "method": record.notice_method,
        },
        "nondisclosure": bool(record.nondisclosure),
        "updated_at": utc(record.updated_at),
        "withdrawn_at": utc(record.withdrawn_at),
    }


def _invalid(errors: dict[str, list[str]]) -> Response:
    response = jsonify(
        error="invalid_filters", message="Correct the filters named here.", fields=errors
    )
    response.status_code = 400
    return response


def _not_found(what: str) -> Response:
    response: Response = api_refusal(404, "not_found", f"There is no {what} with this id.")
    return response


@bp.get("/ferpa/records", endpoint="ferpa_records")
@token_required(FERPA_READ, _list_subject)
def ferpa_records() -> Any:
    """The request records still in a student's file, newest request first, by key."""
    db = webdb.session()
    allowed = schools_for(api_user(), FERPA_READ)
    schools = log.readable_schools(db, allowed)
    form = RecordFilterForm(request.args, schools=[(s.public_id, s.name) for s in schools])
    if not form.validate():
        return _invalid({name: list(errors) for name, errors in form.errors.items()})
    by_public_id = {s.public_id: s.id for s in schools}
    filters = reads.RecordFilters(
        school_id=by_public_id.get(form.school.data or ""),
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        exception=form.exception.data or "",
        released=form.released.data or "",
        notice=form.notice.data or "",
        after=parse_cursor(form.after.data) if form.after.data else None,
    )
    todays = {s.id: _today(s) for s in schools}
    rows, more = reads.record_page(db, allowed, filters, todays)
    cursor = make_cursor(rows[-1].requested_at, rows[-1].id) if more else None
    kept = {name: value for name in FILTER_NAMES if (value := request.args.get(name))}
    return jsonify(
        items=[record_json(row, todays.get(row.school_id) or _today(row.school)) for row in rows],
        next_cursor=cursor,
        next_url=url_for("api.ferpa_records", **{**kept, "after": cursor}) if cursor else None,
    )


@bp.get("/ferpa/records/<public_id>", endpoint="ferpa_record")
@token_required(FERPA_READ, _record_subject)
def ferpa_record(public_id: str) -> Any:
    """One request record, withdrawn ones too (withdrawn_at says when it left the file)."""
    record = webdb.session().scalar(
        select(RequestRecord).where(RequestRecord.public_id == public_id)
    )
    if record is None or not may(api_user(), FERPA_READ, record.school_id):
        # Another school's record is not told apart from one that does not exist.
        return _not_found("request record")
    return jsonify(record_json(record, _today(record.school)))


@bp.get("/ferpa/students/<public_id>/records", endpoint="ferpa_student_records")
@token_required(FERPA_READ, _student_subject, _copy_details)
def ferpa_student_records(public_id: str) -> Any:
    """The student's file, oldest first, as its exports hold it; copy=parent leaves out the
    requests under a non-disclosure order, as the parent's copy does."""
    student = webdb.session().scalar(select(Student).where(Student.public_id == public_id))
    if student is None or not may(api_user(), FERPA_READ, student.school_id):
        return _not_found("student")
    if request.args.get("copy", "file") not in COPIES:
        return _invalid({"copy": ['Choose "file" or "parent".']})
    copy = _copy()
    records = reads.student_records(webdb.session(), student, parent_copy=copy == "parent")
    today = _today(student.school)
    return jsonify(
        student=_student(student),
        copy=copy,
        records=[record_json(record, today) for record in records],
    )
