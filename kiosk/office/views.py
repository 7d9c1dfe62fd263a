"""Office pages: the open encounters, one encounter's record and its live updates, and
the demo mail log. Actions live in kiosk.office.actions."""

from __future__ import annotations

from typing import Any

from flask import (
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.auth.policy import ADMIN, OFFICE, demo_only, may, requires
from kiosk.clock import now_utc
from kiosk.localtime import local
from kiosk.models import (
    Encounter,
    EncounterEvent,
    OutboxMessage,
)
from kiosk.office.blueprint import bp
from kiosk.office.common import audit_view, find, office_user, visible
from kiosk.office.photos import office_photo_context
from kiosk.office.record import describe, moment_of, page_context, record_context, summary
from kiosk.protocol.state import ON_OFFICE_LIST


@bp.get("/office/")
@requires(OFFICE)
def home() -> Any:
    if not may(office_user(), "encounter.read"):
        # Administrators read no record content: they start at administration.
        if may(office_user(), ADMIN):
            return redirect(url_for("admin.home"))
        return redirect(url_for("office.outbox"))
    return render_template("office/home.html", **_open_list())


def _open_list() -> dict[str, Any]:
    db = webdb.session()
    user = office_user()
    rows = db.scalars(
        visible(user)
        .where(Encounter.status.in_(list(ON_OFFICE_LIST)))
        .order_by(Encounter.started_at.desc())
        .limit(200)
    ).all()
    # The cursor moves only with the user's own schools, so it tells nothing of the others.
    seen = visible(user).with_only_columns(Encounter.id)
    cursor = (
        db.scalar(select(func.max(EncounterEvent.id)).where(EncounterEvent.encounter_id.in_(seen)))
        or 0
    )
    now = now_utc()
    return {"encounters": [summary(e, now) for e in rows], "cursor": cursor}


@bp.get("/office/encounters.json")
@requires("encounter.read")
def open_list() -> Response:
    """Live list: the client sends the last cursor; unchanged means nothing to redraw."""
    data = _open_list()
    since = request.args.get("since", type=int)
    minute = now_utc().replace(second=0, microsecond=0).isoformat()
    if since is not None and since == data["cursor"] and request.args.get("minute") == minute:
        return jsonify(cursor=data["cursor"], minute=minute, changed=False)
    return jsonify(changed=True, minute=minute, **data)


@bp.get("/office/encounters/<public_id>")
@requires("encounter.read")
def encounter(public_id: str) -> Any:
    record = find(public_id)
    audit_view("encounter.view", f"encounter:{record.public_id}")
    return render_template("office/encounter.html", **page_context(record))


@bp.get("/office/encounters/<public_id>/record")
@requires("encounter.read")
def record_fragment(public_id: str) -> Any:
    """The recorded details, re-fetched by the page when new events arrive (audited)."""
    record = find(public_id)
    audit_view("encounter.refresh", f"encounter:{record.public_id}")
    return render_template("office/_record.html", **record_context(record))


@bp.get("/office/encounters/<public_id>/photos")
@requires("encounter.read")
def photos_fragment(public_id: str) -> Any:
    """The photo list, re-fetched by the page only when a photo is added: the images are
    served (and each view audited) by the photo route, so they are not reloaded with every
    change to the record."""
    record = find(public_id)
    context = office_photo_context(webdb.session(), record)
    return render_template("office/_photos.html", encounter=record, **context)


@bp.get("/office/encounters/<public_id>/events.json")
@requires("encounter.read")
def events_json(public_id: str) -> Response:
    """New timeline lines since a sequence number, and the current summary (no names)."""
    record = find(public_id)
    since = request.args.get("since", default=0, type=int)
    zone = record.school.timezone
    new = [e for e in record.events if e.seq > since]
    # The top of the page changes only with an event: it is worked out only then.
    moment = moment_of(record, office_photo_context(webdb.session(), record)) if new else None
    return jsonify(
        seq=record.event_count,
        summary=summary(record, now_utc()),
        moment=moment,
        events=[
            {
                "seq": e.seq,
                "at": local(e.at, zone).strftime("%Y-%m-%d %H:%M:%S %Z"),
                "iso": e.at.isoformat(),
                "text": describe(e),
                "actor": e.actor_label,
            }
            for e in new
        ],
    )


@bp.get("/demo/mail")
def mail_log() -> str:
    """Demo mode: show the email the app would have sent."""
    demo_only()
    db = webdb.session()
    messages = db.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.channel == "email")
        .order_by(OutboxMessage.id.desc())
        .limit(200)
    ).all()
    return render_template("office/mail_log.html", messages=messages)
