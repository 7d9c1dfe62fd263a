"""What the district office does on an encounter: each action is one unit of work on the
encounter, locked, so of two people acting at once exactly one wins; and the
acknowledgement link from an alert."""

from __future__ import annotations

from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from kiosk import audit, webdb
from kiosk.auth.forms import EmptyForm
from kiosk.auth.policy import current_user, may, requires
from kiosk.clock import now_utc
from kiosk.db import locked
from kiosk.localtime import clock_time, local, zone
from kiosk.models import (
    Contact,
    Encounter,
    OutboxMessage,
    School,
    TestAlert,
    User,
)
from kiosk.notify.links import AckLinkError, read_ack_token
from kiosk.office import forms
from kiosk.office.blueprint import bp
from kiosk.office.common import audit_view, find, office_actor, office_user
from kiosk.office.record import page_context
from kiosk.protocol import encounters as desk_ops
from kiosk.protocol import office as ops
from kiosk.protocol import test_alerts
from kiosk.protocol.events import Actor


def act(
    permission: str,
    public_id: str,
    form: Any,
    action: Any,
    done: str,
    form_key: str | None = None,
) -> Any:
    """Validate, run one operation, commit once, and come back to the record.

    The redirect lands at the top of the page, where the message and the moment are. A form
    with a problem comes back as typed, with the message next to its field.
    """
    record = find(public_id, permission)
    if form.validate_on_submit():
        try:
            # One unit of work: the operation decides on the encounter as it is now, locked,
            # so of two people acting at once exactly one wins and the other is told why.
            with webdb.unit_of_work() as db:
                action(db, desk_ops.lock_encounter(db, record.id))
        except desk_ops.OperationError as exc:
            if form_key is None or exc.field is None or exc.field not in form:
                flash(str(exc), "error")
                return redirect(url_for("office.encounter", public_id=public_id))
            form[exc.field].errors = [*form[exc.field].errors, str(exc)]
        else:
            flash(done, "info")
            return redirect(url_for("office.encounter", public_id=public_id))
    elif form_key is None:
        flash("The page had expired. Please try again.", "error")
        return redirect(url_for("office.encounter", public_id=public_id))
    audit_view("encounter.view", f"encounter:{record.public_id}")
    context = {**page_context(record), form_key: form}
    return render_template("office/encounter.html", **context), 422


def contact_for(user: User, encounter: Encounter) -> Contact | None:
    return webdb.session().scalar(
        select(Contact).where(Contact.user_id == user.id, Contact.school_id == encounter.school_id)
    )


@bp.post("/office/encounters/<public_id>/acknowledge")
@requires("encounter.acknowledge")
def acknowledge(public_id: str) -> Response:
    user = office_user()

    def run(db: Session, record: Encounter) -> None:
        contact = contact_for(user, record)
        ops.acknowledge(
            db,
            record,
            office_actor(user),
            now_utc(),
            "dashboard",
            contact_id=contact.id if contact else None,
            user_id=user.id,
        )

    return act(
        "encounter.acknowledge", public_id, EmptyForm(), run, "Acknowledged. The desk sees it now."
    )


@bp.post("/office/encounters/<public_id>/message")
@requires("encounter.message_desk")
def message_desk(public_id: str) -> Any:
    form = forms.DeskMessageForm()
    user = office_user()
    return act(
        "encounter.message_desk",
        public_id,
        form,
        lambda db, record: ops.send_desk_message(
            db, record, office_actor(user), now_utc(), form.preset.data, form.text.data
        ),
        "Message sent to the desk.",
        "message_form",
    )


@bp.post("/office/encounters/<public_id>/document")
@requires("encounter.confirm_document")
def confirm_document(public_id: str) -> Any:
    form = forms.ConfirmDocumentForm()
    user = office_user()
    return act(
        "encounter.confirm_document",
        public_id,
        form,
        lambda db, record: ops.confirm_document(
            db, record, office_actor(user), now_utc(), form.doc_type.data or ""
        ),
        "Document type confirmed. The desk's script follows it.",
        "document_form",
    )


@bp.post("/office/encounters/<public_id>/mark/<what>")
@requires("encounter.record")
def mark(public_id: str, what: str) -> Response:
    if what not in ("on_scene", "counsel"):
        abort(404)
    user = office_user()
    return act(
        "encounter.record",
        public_id,
        EmptyForm(),
        lambda db, record: ops.mark_time(db, record, office_actor(user), now_utc(), what),
        "Recorded.",
    )


@bp.post("/office/encounters/<public_id>/consent")
@requires("encounter.record")
def consent_check(public_id: str) -> Any:
    form = forms.ConsentCheckForm()
    user = office_user()
    return act(
        "encounter.record",
        public_id,
        form,
        lambda db, record: ops.record_consent_check(
            db, record, office_actor(user), now_utc(), form.result.data or ""
        ),
        "Consent check recorded.",
        "consent_form",
    )


@bp.post("/office/encounters/<public_id>/guardian")
@requires("encounter.record")
def guardian_notice(public_id: str) -> Any:
    form = forms.GuardianNoticeForm()
    user = office_user()

    def run(db: Session, record: Encounter) -> None:
        when = form.notified_at.data
        at = None
        if when is not None:
            at = when.replace(tzinfo=zone(record.school.timezone))
        ops.record_guardian_notice(
            db,
            record,
            office_actor(user),
            now_utc(),
            form.notice.data or "",
            at,
            form.by.data,
            form.reason.data,
        )

    return act(
        "encounter.record",
        public_id,
        form,
        run,
        "Parent or guardian notification recorded.",
        "guardian_form",
    )


@bp.post("/office/encounters/<public_id>/care")
@requires("encounter.record")
def care(public_id: str) -> Any:
    form = forms.CareForm()
    user = office_user()
    return act(
        "encounter.record",
        public_id,
        form,
        lambda db, record: ops.record_care(
            db, record, office_actor(user), now_utc(), form.care.data
        ),
        "How the child's care was arranged is recorded.",
        "care_form",
    )


@bp.post("/office/encounters/<public_id>/close")
@requires("encounter.resolve")
def close_stood_down(public_id: str) -> Response:
    user = office_user()
    return act(
        "encounter.resolve",
        public_id,
        EmptyForm(),
        lambda db, record: ops.close_stood_down(db, record, office_actor(user), now_utc()),
        "Closed as a mistake. It has left the list of open encounters.",
    )


@bp.post("/office/encounters/<public_id>/reopen")
@requires("encounter.resolve")
def reopen(public_id: str) -> Response:
    user = office_user()
    return act(
        "encounter.resolve",
        public_id,
        EmptyForm(),
        lambda db, record: ops.reopen(db, record, office_actor(user), now_utc()),
        "Reopened. Escalation resumes unless someone had acknowledged.",
    )


@bp.post("/office/encounters/<public_id>/resolve")
@requires("encounter.resolve")
def resolve(public_id: str) -> Any:
    form = forms.ResolveForm()
    user = office_user()
    return act(
        "encounter.resolve",
        public_id,
        form,
        lambda db, record: ops.resolve(
            db,
            record,
            office_actor(user),
            now_utc(),
            form.outcome.data or None,
            form.notes.data,
        ),
        "Resolved. The kiosk has returned to its start screen.",
        "resolve_form",
    )


@bp.route("/ack/<token>", methods=["GET", "POST"])
def acknowledge_link(token: str) -> Any:
    """From an alert: GET only shows a confirmation (mail scanners change nothing); POST acks."""
    db = webdb.session()
    max_age = current_app.config["ACK_LINK_HOURS"] * 3600
    try:
        claim = read_ack_token(current_app.config["SECRET_KEY"], token, max_age)
    except AckLinkError as exc:
        return render_template("office/ack.html", problem=exc.reason), 400
    if claim.test:
        return acknowledge_test_link(claim.encounter_public_id, claim.contact_id)
    record = db.scalar(select(Encounter).where(Encounter.public_id == claim.encounter_public_id))
    contact = db.get(Contact, claim.contact_id)
    alerted = record is not None and db.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.encounter_id == record.id, OutboxMessage.contact_id == claim.contact_id
        )
    )
    if record is None or contact is None or not alerted:
        return render_template("office/ack.html", problem="invalid"), 400
    school = record.school
    context = {
        "school": school,
        "started": local(record.started_at, school.timezone).strftime("%H:%M:%S %Z"),
        "contact": contact,
        "record_url": url_for("office.encounter", public_id=record.public_id),
    }
    form = EmptyForm()
    if not form.validate_on_submit():
        return render_template("office/ack.html", form=form, **context)
    # The link credits the contact it was sent to; someone signed in on this browser is
    # named too only if they may see this school's records.
    user = current_user()
    if not may(user, "encounter.read", record.school_id):
        user = None
    actor = Actor(
        kind="contact", label=contact.name, contact_id=contact.id, user_id=user.id if user else None
    )
    try:
        with webdb.unit_of_work() as work:
            result = ops.acknowledge(
                work,
                desk_ops.lock_encounter(work, record.id),
                actor,
                now_utc(),
                contact.channel,
                contact_id=contact.id,
                user_id=user.id if user else None,
            )
    except desk_ops.OperationError as exc:
        return render_template(
            "office/ack.html", problem="stood_down", message=str(exc), **context
        ), 409
    if not result.first and result.acknowledgement is None:
        return render_template(
            "office/ack.html",
            problem="reused",
            already=clock_time(result.already_at, school.timezone) if result.already_at else "",
            **context,
        ), 409
    return render_template(
        "office/ack.html", done=clock_time(now_utc(), school.timezone), **context
    )


def acknowledge_test_link(test_public_id: str, contact_id: int) -> Any:
    """A test alert's link: the same confirmation and button as a real alert's; acknowledging
    records who and when on the test alert, for the administration, and nothing else."""
    db = webdb.session()
    test = test_alerts.find_test(db, test_public_id)
    contact = db.get(Contact, contact_id)
    if test is None or contact is None or not test_alerts.was_sent_to(db, test, contact_id):
        return render_template("office/ack.html", problem="invalid"), 400
    school = db.get(School, test.school_id)
    assert school is not None
    context = {
        "school": school,
        "sent": clock_time(test.sent_at, school.timezone),
        "contact": contact,
    }
    form = EmptyForm()
    if not form.validate_on_submit():
        return render_template("admin/test_alerts_ack.html", form=form, **context)
    now = now_utc()
    with webdb.unit_of_work() as work:
        row = locked(work, TestAlert, test.id)
        assert row is not None
        result = test_alerts.acknowledge_test(work, row, contact, now, contact.channel)
        if result.first:
            audit.record(
                work,
                current_app.config["AUDIT_KEY"],
                now,
                actor=f"contact:{contact.id}",
                action="test_alert.acknowledge",
                subject=f"test_alert:{test.public_id}",
                details={"channel": contact.channel},
            )
    return render_template(
        "admin/test_alerts_ack.html",
        done=clock_time(result.at, school.timezone),
        first=result.first,
        **context,
    )
