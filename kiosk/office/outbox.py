"""The outbox page: every message to a person, its delivery state, and "Retry now"."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from kiosk import audit, webdb
from kiosk.auth.forms import EmptyForm
from kiosk.auth.policy import requires, schools_for
from kiosk.clock import now_utc
from kiosk.db import locked
from kiosk.models import Contact, Encounter, OutboxMessage, School, User
from kiosk.models.delivery import OUTBOX_STATUSES
from kiosk.notify.health import contact_problems
from kiosk.notify.leases import RETRYABLE, retry_now
from kiosk.office.blueprint import bp
from kiosk.office.common import office_user
from kiosk.protocol.escalation import RETRY_FAILED_SECONDS, FailedEscalation, failing_escalations

PAGE_ROWS = 200


def _user() -> User:
    return office_user()


def _school_ids(user: User, action: str = "outbox.read") -> set[int] | None:
    """Schools whose messages the user sees; None means the whole district."""
    return schools_for(user, action)


def _scoped(query: Any, user: User, action: str = "outbox.read") -> Any:
    schools = _school_ids(user, action)
    if schools is not None:
        # Messages of no encounter (test alerts, invitations, kiosk check-in notices) are for
        # district-wide staff only.
        query = query.where(Encounter.school_id.in_(schools or {-1}))
    return query


def _rows_query() -> Any:
    return (
        select(OutboxMessage, Encounter, School)
        .outerjoin(Encounter, OutboxMessage.encounter_id == Encounter.id)
        .outerjoin(School, Encounter.school_id == School.id)
    )


def shown_recipient(message: OutboxMessage) -> str:
    return shown_address(message.channel, message.recipient)


def shown_address(channel: str, address: str) -> str:
    """Webhook URLs often embed a token: show only their scheme and host."""
    if channel != "webhook":
        return address
    parts = urlsplit(address)
    return f"{parts.scheme}://{parts.hostname}/…" if parts.hostname else "(invalid address)"


def _failing_escalations(user: User) -> list[dict[str, Any]]:
    """Encounters of the user's schools whose escalation this server process cannot do."""
    schools = _school_ids(user)
    failing: list[FailedEscalation] = [
        f for f in failing_escalations() if schools is None or f.school_id in schools
    ]
    if not failing:
        return []
    found = webdb.session().execute(
        select(School.id, School.timezone).where(School.id.in_({f.school_id for f in failing}))
    )
    zones = {school_id: zone for school_id, zone in found}
    return [{"failure": f, "zone": zones.get(f.school_id, "UTC")} for f in failing]


def _contact_problems(user: User) -> list[dict[str, Any]]:
    """Contacts of the user's schools whose messages have waited too long to get through."""
    limit = float(current_app.config["DELIVERY_STALL_SECONDS"])
    problems = contact_problems(webdb.session(), now_utc(), limit)
    if not problems:
        return []
    found = webdb.session().execute(
        select(Contact, School)
        .join(School, Contact.school_id == School.id)
        .where(Contact.id.in_({p.contact_id for p in problems}))
    )
    contacts = {contact.id: (contact, school) for contact, school in found}
    schools = _school_ids(user)
    shown = []
    for problem in problems:
        contact, school = contacts.get(problem.contact_id, (None, None))
        if contact is None or school is None or (schools is not None and school.id not in schools):
            continue
        shown.append(
            {
                "problem": problem,
                "contact": contact,
                "school": school,
                "address": shown_address(contact.channel, contact.address),
                "minutes": int(problem.oldest_age_s // 60),
            }
        )
    return shown


@bp.get("/office/outbox")
@requires("outbox.read")
def outbox() -> str:
    status = request.args.get("status", "")
    if status not in OUTBOX_STATUSES:
        status = ""
    query = _scoped(_rows_query(), _user())
    if status:
        query = query.where(OutboxMessage.status == status)
    rows = webdb.session().execute(query.order_by(OutboxMessage.id.desc()).limit(PAGE_ROWS)).all()
    return render_template(
        "office/outbox.html",
        rows=[
            {"message": m, "encounter": e, "school": s, "recipient": shown_recipient(m)}
            for m, e, s in rows
        ],
        status=status,
        statuses=OUTBOX_STATUSES,
        retryable=RETRYABLE,
        form=EmptyForm(),
        limit=PAGE_ROWS,
        failing=_failing_escalations(_user()),
        contact_problems=_contact_problems(_user()),
        retry_seconds=int(RETRY_FAILED_SECONDS),
    )


@bp.post("/office/outbox/<int:message_id>/retry")
@requires("outbox.retry")
def outbox_retry(message_id: int) -> Response:
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    user = _user()
    db = webdb.session()
    query = _scoped(_rows_query(), user, "outbox.retry")
    found = db.execute(query.where(OutboxMessage.id == message_id)).first()
    if found is None:
        abort(404)
    message = found[0]
    now = now_utc()
    with webdb.unit_of_work() as work:
        row = locked(work, OutboxMessage, message.id)
        retried = row is not None and retry_now(work, row, now)
        if retried:
            audit.record(
                work,
                current_app.config["AUDIT_KEY"],
                now,
                actor=f"user:{user.public_id}",
                action="outbox.retry",
                subject=f"outbox:{message.id}",
            )
    if retried:
        flash("The message will be sent again now.", "info")
    else:
        flash("That message is being sent or was already sent.", "info")
    status = request.args.get("status", "")
    return redirect(url_for("office.outbox", status=status if status in OUTBOX_STATUSES else None))
