"""FERPA pages: match named people, keep each 99.32 request record, the student's file and
its files, and the parent notices due. HTTP only: the rules live in kiosk.ferpa.operations."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk import audit, webdb
from kiosk.auth.policy import current_user, may, requires, schools_for
from kiosk.clock import now_utc
from kiosk.ferpa import operations as ops
from kiosk.ferpa import reads
from kiosk.ferpa.blueprint import bp
from kiosk.ferpa.forms import (
    FindStudentForm,
    MatchForm,
    NondisclosureForm,
    NoticeForm,
    RecordForm,
)
from kiosk.localtime import local
from kiosk.models import Encounter, NamedPerson, PersonMatch, RequestRecord, School, Student, User
from kiosk.office.common import find, office_user
from kiosk.protocol.encounters import OperationError
from kiosk.review.export import neutralised
from kiosk.sealing import blind_index


def _audit(db: Session, user: User, action: str, subject: str, **details: Any) -> None:
    """One audit entry; details hold ids and categories, never a name or free text."""
    audit.record(
        db,
        current_app.config["AUDIT_KEY"],
        now_utc(),
        actor=f"user:{user.public_id}",
        action=action,
        subject=subject,
        details=details,
    )


def _audit_alone(user: User, action: str, subject: str, **details: Any) -> None:
    """Record a view in a short write of its own, before anything is shown."""
    with webdb.unit_of_work() as db:
        _audit(db, user, action, subject, **details)


def _today(zone_name: str = "UTC") -> date:
    return local(now_utc(), zone_name).date()


def _field_of(exc: OperationError, form: Any, fallback: str) -> str:
    """The form field an operation's refusal is about, so its message shows beside it."""
    return exc.field if exc.field is not None and exc.field in form else fallback


@bp.app_context_processor
def _nav() -> dict[str, Any]:
    """The office menu offers the notices, and the report its matching page, to officials."""
    return {
        "can_read_student_files": lambda: may(current_user(), "ferpa.read"),
        "can_match_students": lambda: may(current_user(), "ferpa.record"),
    }


# Matching -------------------------------------------------------------------------------


def _people(db: Session, encounter: Encounter) -> list[NamedPerson]:
    """Everyone named, withdrawn names too: one matched before the desk withdrew it must
    stay open to a changed decision."""
    return list(
        db.scalars(
            select(NamedPerson)
            .where(NamedPerson.encounter_id == encounter.id)
            .order_by(NamedPerson.position)
        )
    )


def _choices(db: Session, user: User) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Students and schools the user may record for: (public id, label) pairs."""
    allowed = schools_for(user, "ferpa.record")
    school_query = select(School).order_by(School.name)
    student_query = select(Student).order_by(Student.id)
    if allowed is not None:
        school_query = school_query.where(School.id.in_(allowed or {-1}))
        student_query = student_query.where(Student.school_id.in_(allowed or {-1}))
    schools = list(db.scalars(school_query))
    students = [
        (s.public_id, f"{s.name} ({s.school.name}{', ID ' + s.local_id if s.local_id else ''})")
        for s in db.scalars(student_query)
    ]
    return students, [(s.public_id, s.name) for s in schools]


def _match_form(
    db: Session,
    person: NamedPerson,
    encounter: Encounter,
    choices: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    formdata: Any = None,
) -> MatchForm:
    """The form for one person, filled with the current decision or a suggestion: an
    enrolled student whose name has the same blind index."""
    prefix = f"p{person.position}"
    if formdata is not None:
        form = MatchForm(prefix=prefix)
    else:
        form = MatchForm(formdata=None, prefix=prefix)
        current = ops.current_match(db, person.id)
        school = encounter.school.public_id
        if current is not None and current.student is not None:
            form.outcome.data, form.student.data = "existing", current.student.public_id
        elif current is not None:
            form.outcome.data = current.outcome
        else:
            alike = db.scalar(
                select(Student).where(Student.name_index == person.name_index).limit(1)
            )
            if alike is not None:
                form.outcome.data, form.student.data = "existing", alike.public_id
        form.new_school.data = school
    form.pre_validate_choices(*choices)
    return form


def _match_context(
    db: Session, encounter: Encounter, user: User, forms: dict[int, MatchForm] | None = None
) -> dict[str, Any]:
    choices = _choices(db, user)
    people = []
    for person in _people(db, encounter):
        history = list(
            db.scalars(
                select(PersonMatch)
                .where(PersonMatch.named_person_id == person.id)
                .order_by(PersonMatch.decided_at.desc(), PersonMatch.id.desc())
            )
        )
        current = history[0] if history and history[0].superseded_at is None else None
        record = ops.record_of_match(db, current.id) if current is not None else None
        form = (forms or {}).get(person.id) or _match_form(db, person, encounter, choices)
        people.append(
            {
                "person": person,
                "current": current,
                "record": record,
                "history": history,
                "form": form,
            }
        )
    return {"encounter": encounter, "people": people, "outcome_labels": ops.OUTCOME_LABELS}


@bp.get("/encounters/<public_id>", endpoint="match_page")
@requires("ferpa.record")
def match_page(public_id: str) -> Any:
    """The people named in an encounter, each with what a district official decided."""
    encounter = find(public_id, "ferpa.record")
    user = office_user()
    _audit_alone(user, "ferpa.match_view", f"encounter:{encounter.public_id}")
    return render_template("ferpa/match.html", **_match_context(webdb.session(), encounter, user))


@bp.post("/encounters/<public_id>/people/<int:position>", endpoint="match")
@requires("ferpa.record")
def match(public_id: str, position: int) -> Any:
    """Record (or change) what one named person is; a match to a student makes the 99.32
    request record, and a change withdraws the earlier one from that student's file."""
    encounter = find(public_id, "ferpa.record")
    user = office_user()
    db = webdb.session()
    person = db.scalar(
        select(NamedPerson).where(
            NamedPerson.encounter_id == encounter.id, NamedPerson.position == position
        )
    )
    if person is None:
        abort(404)
    form = _match_form(db, person, encounter, _choices(db, user), formdata=request.form)
    if form.validate_on_submit():
        schools = {s.public_id: s.id for s in db.scalars(select(School))}
        values = ops.MatchInput(
            outcome=form.outcome.data or "",
            student_public_id=form.student.data or None,
            new_name=form.new_name.data,
            new_school_id=schools.get(form.new_school.data or ""),
            new_local_id=form.new_local_id.data,
        )
        try:
            with webdb.unit_of_work() as writer:
                found, record, changed = ops.match_person(
                    writer,
                    current_app.config["INDEX_KEY"],
                    person.id,
                    values,
                    user.id,
                    now_utc(),
                    current_app.config["FERPA_NOTICE_DAYS"],
                )
                if changed:
                    student = found.student.public_id if found.student is not None else None
                    _audit(
                        writer,
                        user,
                        "ferpa.match",
                        f"encounter:{encounter.public_id}",
                        named_person=person.id,
                        outcome=found.outcome,
                        student=student,
                        request_record=record.public_id if record is not None else None,
                    )
        except OperationError as exc:
            field = _field_of(exc, form, "outcome")
            form[field].errors = [*form[field].errors, str(exc)]
        else:
            flash("The decision is recorded.", "info")
            return redirect(url_for("ferpa.match_page", public_id=public_id))
    context = _match_context(db, encounter, user, {person.id: form})
    return render_template("ferpa/match.html", **context), 422


# The request record ------------------------------------------------------------------------


def _record(public_id: str, action: str = "ferpa.read") -> RequestRecord:
    """The record if the user may read records of its school (404 otherwise: its existence
    is not told), and may take the action there (403 otherwise)."""
    record = webdb.session().scalar(
        select(RequestRecord).where(RequestRecord.public_id == public_id)
    )
    user = office_user()
    if record is None or not may(user, "ferpa.read", record.school_id):
        abort(404)
    if not may(user, action, record.school_id):
        abort(403)
    return record


def _record_page(
    record: RequestRecord,
    form: RecordForm | None = None,
    notice_form: NoticeForm | None = None,
    order_form: NondisclosureForm | None = None,
    status: int = 200,
) -> Any:
    user = office_user()
    if form is None:
        form = RecordForm(formdata=None, obj=record)
    if notice_form is None:
        notice_form = NoticeForm(formdata=None)
    if order_form is None:
        order_form = NondisclosureForm(formdata=None)
        order_form.order.data = "set" if record.nondisclosure else "clear"
    return render_template(
        "ferpa/record.html",
        record=record,
        row=reads.row(record, record.student, _today(record.school.timezone)),
        form=form,
        notice_form=notice_form,
        order_form=order_form,
        can_record=may(user, "ferpa.record", record.school_id),
        can_order=may(user, "ferpa.nondisclosure", record.school_id),
    ), status


@bp.get("/records/<public_id>", endpoint="record")
@requires("ferpa.read")
def record_page(public_id: str) -> Any:
    """One 99.32 request record, with the forms to correct it and track the notice."""
    record = _record(public_id)
    _audit_alone(
        office_user(),
        "ferpa.record_view",
        f"student:{record.student.public_id}",
        request_record=record.public_id,
    )
    return _record_page(record)


@bp.post("/records/<public_id>", endpoint="update_record")
@requires("ferpa.record")
def update_record(public_id: str) -> Any:
    record = _record(public_id, "ferpa.record")
    user = office_user()
    form = RecordForm()
    if form.validate_on_submit():
        values = ops.RecordInput(
            basis=form.basis.data or "",
            released=form.released.data or "",
            exception=form.exception.data or "",
            notice_due_on=form.notice_due_on.data,
        )
        try:
            with webdb.unit_of_work() as writer:
                changed = ops.update_record(writer, record.id, values, user.id, now_utc())
                if changed:
                    _audit(
                        writer,
                        user,
                        "ferpa.record_update",
                        f"student:{record.student.public_id}",
                        request_record=record.public_id,
                        fields=changed,
                    )
        except OperationError as exc:
            field = _field_of(exc, form, "exception")
            form[field].errors = [*form[field].errors, str(exc)]
        else:
            flash("The request record is saved.", "info")
            return redirect(url_for("ferpa.record", public_id=public_id))
    return _record_page(record, form=form, status=422)


@bp.post("/records/<public_id>/notice", endpoint="notice_sent")
@requires("ferpa.record")
def notice_sent(public_id: str) -> Any:
    """Mark the parent notice sent: when, and how."""
    record = _record(public_id, "ferpa.record")
    user = office_user()
    form = NoticeForm()
    if form.validate_on_submit() and form.sent_on.data is not None:
        values = ops.NoticeInput(sent_on=form.sent_on.data, method=form.method.data or "")
        try:
            with webdb.unit_of_work() as writer:
                ops.record_notice(
                    writer,
                    record.id,
                    values,
                    user.id,
                    now_utc(),
                    _today(record.school.timezone),
                )
                _audit(
                    writer,
                    user,
                    "ferpa.notice_sent",
                    f"student:{record.student.public_id}",
                    request_record=record.public_id,
                    method=values.method,
                    sent_on=values.sent_on.isoformat(),
                )
        except OperationError as exc:
            field = _field_of(exc, form, "sent_on")
            form[field].errors = [*form[field].errors, str(exc)]
        else:
            flash("The parent notice is marked sent.", "info")
            return redirect(url_for("ferpa.record", public_id=public_id))
    return _record_page(record, notice_form=form, status=422)


@bp.post("/records/<public_id>/nondisclosure", endpoint="nondisclosure")
@requires("ferpa.nondisclosure")
def nondisclosure(public_id: str) -> Any:
    """Counsel only: record that a non-disclosure order applies (or no longer does)."""
    record = _record(public_id, "ferpa.nondisclosure")
    user = office_user()
    form = NondisclosureForm()
    if form.validate_on_submit():
        value = form.order.data == "set"
        try:
            with webdb.unit_of_work() as writer:
                if ops.set_nondisclosure(writer, record.id, value, user.id, now_utc()):
                    _audit(
                        writer,
                        user,
                        "ferpa.nondisclosure_set" if value else "ferpa.nondisclosure_cleared",
                        f"student:{record.student.public_id}",
                        request_record=record.public_id,
                    )
        except OperationError as exc:
            form["order"].errors = [*form["order"].errors, str(exc)]
        else:
            flash("The non-disclosure order is recorded.", "info")
            return redirect(url_for("ferpa.record", public_id=public_id))
    return _record_page(record, order_form=form, status=422)


# The student's file -----------------------------------------------------------------------


def _student(public_id: str) -> Student:
    student = webdb.session().scalar(select(Student).where(Student.public_id == public_id))
    if student is None or not may(office_user(), "ferpa.read", student.school_id):
        abort(404)
    return student


def _copy() -> str:
    return "parent" if request.args.get("copy") == "parent" else "file"


def _student_rows(student: Student, copy: str) -> list[dict[str, Any]]:
    records = reads.student_records(webdb.session(), student, parent_copy=copy == "parent")
    today = _today(student.school.timezone)
    return [reads.row(record, student, today) for record in records]


@bp.get("/students/<public_id>", endpoint="student")
@requires("ferpa.read")
def student_page(public_id: str) -> Any:
    """Every request record in the student's file, printable; the parent's copy leaves out
    requests under a non-disclosure order."""
    student = _student(public_id)
    copy = _copy()
    _audit_alone(
        office_user(),
        "ferpa.student_view",
        f"student:{student.public_id}",
        student=student.public_id,
        copy=copy,
    )
    return render_template(
        "ferpa/student.html",
        student=student,
        rows=_student_rows(student, copy),
        copy=copy,
        columns=reads.COLUMNS,
    )


def _download(public_id: str, kind: str) -> Response:
    student = _student(public_id)
    copy = _copy()
    rows = _student_rows(student, copy)
    _audit_alone(
        office_user(),
        "ferpa.student_export",
        f"student:{student.public_id}",
        student=student.public_id,
        copy=copy,
        format=kind,
    )
    if kind == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["student", *reads.COLUMNS])
        for row in rows:
            writer.writerow(
                [neutralised(student.name), *(neutralised(row[c]) for c in reads.COLUMNS)]
            )
        body, mimetype = buffer.getvalue(), "text/csv"
    else:
        document = {
            "student": student.name,
            "student_id": student.public_id,
            "local_student_id": student.local_id,
            "copy": copy,
            # Neutralised like the CSV: a JSON file is often opened in a spreadsheet too.
            "records": [{k: neutralised(v) for k, v in row.items()} for row in rows],
        }
        body, mimetype = json.dumps(document, ensure_ascii=False, indent=1), "application/json"
    response = Response(body, mimetype=mimetype)
    name = f"ferpa-requests-{student.public_id}-{copy}.{kind}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/students/<public_id>.csv", endpoint="student_csv")
@requires("ferpa.read")
def student_csv(public_id: str) -> Response:
    return _download(public_id, "csv")


@bp.get("/students/<public_id>.json", endpoint="student_json")
@requires("ferpa.read")
def student_json(public_id: str) -> Response:
    return _download(public_id, "json")


# Parent notices ---------------------------------------------------------------------------


@bp.get("/", endpoint="notices")
@requires("ferpa.read")
def notices() -> Any:
    """Parent notices not yet sent, the earliest due first; overdue ones say so."""
    return _notices_page(FindStudentForm(formdata=None))


@bp.post("/students/find", endpoint="find_student")
@requires("ferpa.read")
def find_student() -> Any:
    """The files of the students with this name, in the schools the user may read."""
    form = FindStudentForm()
    if not form.validate_on_submit():
        return _notices_page(form, status=422)
    user = office_user()
    query = select(Student).where(
        Student.name_index == blind_index(current_app.config["INDEX_KEY"], form.name.data or "")
    )
    allowed = schools_for(user, "ferpa.read")
    if allowed is not None:
        query = query.where(Student.school_id.in_(allowed or {-1}))
    found = list(webdb.session().scalars(query.order_by(Student.id)))
    _audit_alone(user, "ferpa.student_search", "students", found=len(found))
    return _notices_page(form, found=found)


def _notices_page(
    form: FindStudentForm, found: list[Student] | None = None, status: int = 200
) -> Any:
    user = office_user()
    records = reads.pending_notices(webdb.session(), schools_for(user, "ferpa.read"))
    rows = []
    for record in records:
        today = _today(record.school.timezone)
        rows.append(
            {
                "record": record,
                "school": record.school.name,
                "due": record.notice_due_on,
                "overdue": record.notice_due_on is not None and record.notice_due_on < today,
                "state": reads.notice_state(record, today),
            }
        )
    return render_template("ferpa/notices.html", rows=rows, find_form=form, found=found), status
