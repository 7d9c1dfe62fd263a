"""Office pages: the list of open encounters, one encounter's record, the demo mail log."""

from __future__ import annotations

import json

from flask import abort, current_app, render_template
from sqlalchemy import select

from kiosk import audit, webdb
from kiosk.auth.policy import (
    OFFICE_ROLES,
    can_view_encounter,
    current_user,
    demo_only,
    grants,
    login_required,
)
from kiosk.clock import now_utc
from kiosk.db import write_intent
from kiosk.models import Encounter, OutboxMessage, School, ScriptVersion
from kiosk.office.blueprint import bp
from kiosk.protocol.documents import DOC_LABELS, DocType
from kiosk.protocol.scriptstore import pack_for
from kiosk.protocol.state import ACTIVE


@bp.get("/office/")
@login_required(*OFFICE_ROLES)
def home() -> str:
    user = current_user()
    assert user is not None
    db = webdb.session()
    school_ids = {g.school_id for g in grants(user) if g.role in OFFICE_ROLES}
    query = select(Encounter).where(Encounter.status.in_(list(ACTIVE)))
    if None not in school_ids:
        query = query.where(Encounter.school_id.in_(school_ids))
    encounters = db.scalars(query.order_by(Encounter.started_at.desc()).limit(200)).all()
    return render_template("office/home.html", encounters=encounters, now=now_utc())


@bp.get("/office/encounters/<public_id>")
def encounter(public_id: str) -> str:
    # Viewing names is audited, so this read writes: take SQLite's write lock up front.
    write_intent.set(True)
    return _encounter_page(public_id)


@login_required(*OFFICE_ROLES)
def _encounter_page(public_id: str) -> str:
    user = current_user()
    assert user is not None
    db = webdb.session()
    record = db.scalar(select(Encounter).where(Encounter.public_id == public_id))
    if record is None or not can_view_encounter(user, record):
        abort(404)
    audit.record(
        db,
        current_app.config["AUDIT_KEY"],
        now_utc(),
        actor=f"user:{user.public_id}",
        action="encounter.view",
        subject=f"encounter:{record.public_id}",
    )
    db.commit()
    messages = db.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.encounter_id == record.id)
        .order_by(OutboxMessage.id)
    ).all()
    version = db.get(ScriptVersion, record.script_version_id) if record.script_version_id else None
    return render_template(
        "office/encounter.html",
        encounter=record,
        school=db.get(School, record.school_id),
        messages=messages,
        events=[(event, json.loads(event.data)) for event in record.events],
        doc_labels={t.value: label for t, label in DOC_LABELS.items()},
        doc_type=DocType,
        pack=pack_for(version) if version else None,
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
