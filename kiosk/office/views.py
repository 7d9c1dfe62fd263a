"""Office pages: open encounters, one encounter's record and actions, acknowledgement links."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from kiosk import audit, reads, webdb
from kiosk.auth.forms import EmptyForm
from kiosk.auth.policy import (
    OFFICE_ROLES,
    can_view_encounter,
    current_user,
    demo_only,
    grants,
    login_required,
)
from kiosk.clock import now_utc
from kiosk.models import (
    Acknowledgement,
    Contact,
    DeskMessage,
    Encounter,
    EncounterEvent,
    LateAddition,
    OutboxMessage,
    ScriptVersion,
    User,
)
from kiosk.notify.links import AckLinkError, Links, read_ack_token
from kiosk.notify.localtime import clock_time, local, zone
from kiosk.office import forms
from kiosk.office.blueprint import bp
from kiosk.office.photos import first_document_photo, office_photo_context
from kiosk.protocol import capture
from kiosk.protocol import encounters as desk_ops
from kiosk.protocol import office as ops
from kiosk.protocol.documents import DOC_LABELS, DocType
from kiosk.protocol.events import Actor
from kiosk.protocol.scriptstore import pack_by_id, pack_for
from kiosk.protocol.state import ACTIVE, ON_OFFICE_LIST, Status
from kiosk.vocabulary import OUTCOMES, RELATIONS, REQUEST_KINDS


def _user() -> User:
    user = current_user()
    assert user is not None
    return user


def _school_ids(user: User) -> set[int] | None:
    """The schools whose encounters the user sees; None means every school."""
    ids = {g.school_id for g in grants(user) if g.role in OFFICE_ROLES}
    return None if None in ids else {i for i in ids if i is not None}


def _visible(user: User) -> Any:
    query = select(Encounter)
    schools = _school_ids(user)
    if schools is not None:
        query = query.where(Encounter.school_id.in_(schools or {-1}))
    return query


def _find(public_id: str) -> Encounter:
    """Return the encounter if this user may see it; otherwise 404 (existence is not told)."""
    record = webdb.session().scalar(select(Encounter).where(Encounter.public_id == public_id))
    if record is None or not can_view_encounter(_user(), record):
        abort(404)
    return record


def _actor(user: User) -> Actor:
    return Actor(kind="user", label=user.display_name, user_id=user.id)


def _links() -> Links:
    return Links.from_settings(current_app.config)


def _audit(action: str, subject: str) -> None:
    """Record a view of names: one short write of its own, before the page is rendered."""
    actor = f"user:{_user().public_id}"
    with webdb.unit_of_work() as db:
        audit.record(
            db,
            current_app.config["AUDIT_KEY"],
            now_utc(),
            actor=actor,
            action=action,
            subject=subject,
        )


def _ack_label(encounter: Encounter) -> dict[str, Any] | None:
    ack = reads.first_acknowledgement(webdb.session(), encounter)
    if ack is None:
        return None
    return {
        "by": reads.acknowledger_name(webdb.session(), ack),
        "at": clock_time(ack.at, encounter.school.timezone),
        "channel": ack.channel,
    }


def summary(encounter: Encounter, now: datetime) -> dict[str, Any]:
    """What the live list shows: categories and states, never names or free text."""
    school = encounter.school
    impression = encounter.doc_first_impression
    confirmed = encounter.doc_confirmed_type
    return {
        "id": encounter.public_id,
        "url": url_for("office.encounter", public_id=encounter.public_id),
        "school": school.name,
        "started": local(encounter.started_at, school.timezone).strftime("%H:%M:%S"),
        "minutes": int((now - encounter.started_at).total_seconds() // 60),
        "channel": encounter.channel.replace("_", " "),
        "status": encounter.status.replace("_", " "),
        "acknowledged": _ack_label(encounter),
        "level": encounter.escalation_level,
        "exigency": bool(encounter.exigency),
        "document": DOC_LABELS[DocType(confirmed or impression)]
        if (confirmed or impression)
        else "",
        "document_confirmed": confirmed is not None,
        "request": ", ".join(
            dict(REQUEST_KINDS).get(k, k) for k in encounter.request_kinds.split(",") if k
        ),
        "agents": len(encounter.agents),
        "desk_closed": encounter.desk_closed_at is not None,
        "stood_down": encounter.status == Status.STOOD_DOWN,
    }


@bp.get("/office/")
@login_required(*OFFICE_ROLES)
def home() -> str:
    return render_template("office/home.html", **_open_list())


def _open_list() -> dict[str, Any]:
    db = webdb.session()
    rows = db.scalars(
        _visible(_user())
        .where(Encounter.status.in_(list(ON_OFFICE_LIST)))
        .order_by(Encounter.started_at.desc())
        .limit(200)
    ).all()
    cursor = db.scalar(select(func.max(EncounterEvent.id))) or 0
    now = now_utc()
    return {"encounters": [summary(e, now) for e in rows], "cursor": cursor}


@bp.get("/office/encounters.json")
@login_required(*OFFICE_ROLES)
def open_list() -> Response:
    """Live list: the client sends the last cursor; unchanged means nothing to redraw."""
    data = _open_list()
    since = request.args.get("since", type=int)
    minute = now_utc().replace(second=0, microsecond=0).isoformat()
    if since is not None and since == data["cursor"] and request.args.get("minute") == minute:
        return jsonify(cursor=data["cursor"], minute=minute, changed=False)
    return jsonify(changed=True, minute=minute, **data)


def _script_preview(encounter: Encounter) -> list[tuple[str, str]]:
    version = webdb.session().get(ScriptVersion, encounter.script_version_id)
    if version is None:
        return []
    pack = pack_for(version)
    facts = desk_ops.facts_for(encounter)
    steps = ("start", "request", "document", "exigency", "outcome")
    # Steps that show the same words are listed together, so a phone shows each line once.
    preview: list[tuple[str, str]] = []
    for step in steps:
        say = pack.block(step, facts).say
        if preview and preview[-1][1] == say:
            preview[-1] = (f"{preview[-1][0]}, {step}", say)
        else:
            preview.append((step, say))
    return preview


def _request_kinds(encounter: Encounter) -> list[str]:
    return [k for k in encounter.request_kinds.split(",") if k]


def _record_context(encounter: Encounter) -> dict[str, Any]:
    db = webdb.session()
    version = db.get(ScriptVersion, encounter.script_version_id)
    return {
        "encounter": encounter,
        "school": encounter.school,
        "document": capture.first_document(db, encounter),
        "doc_labels": {t.value: label for t, label in DOC_LABELS.items()},
        "request_labels": dict(REQUEST_KINDS),
        "relations": dict(RELATIONS),
        "outcomes": dict(OUTCOMES),
        "parent_sought": "adult" in _request_kinds(encounter),
        "pack": pack_for(version) if version else None,
        "script_preview": _script_preview(encounter),
        "desk_messages": db.scalars(
            select(DeskMessage)
            .where(DeskMessage.encounter_id == encounter.id)
            .order_by(DeskMessage.sent_at)
        ).all(),
        "late_additions": [
            (row, json.loads(row.content))
            for row in db.scalars(
                select(LateAddition)
                .where(LateAddition.encounter_id == encounter.id)
                .order_by(LateAddition.id)
            )
        ],
    }


def _offers(encounter: Encounter, document_photos: int) -> dict[str, bool]:
    """Which actions the page offers now, so that a phone shows only what the moment calls
    for; the operations still check each one when it is used."""
    active = encounter.status in ACTIVE
    has_document = bool(encounter.doc_first_impression or encounter.doc_confirmed_type)
    return {
        "acknowledge": active and encounter.first_acknowledged_at is None,
        "confirm_document": active and (has_document or document_photos > 0),
        "care": active and "adult" in _request_kinds(encounter),
        "stand_down": encounter.status == Status.STOOD_DOWN,
    }


def _document_line(encounter: Encounter) -> str:
    impression = encounter.doc_first_impression
    confirmed = encounter.doc_confirmed_type
    if confirmed:
        line = f"Confirmed: {DOC_LABELS[DocType(confirmed)]}"
        if impression:
            line += f" (desk's first impression: {DOC_LABELS[DocType(impression)]})"
        return line
    if impression:
        return f"Desk's first impression: {DOC_LABELS[DocType(impression)]}, not confirmed yet"
    return "No first impression recorded yet"


def _state_line(encounter: Encounter) -> str:
    """A stood-down or resolved encounter says so at the top; an active one says nothing."""
    zone_name = encounter.school.timezone
    if encounter.status == Status.STOOD_DOWN:
        at = clock_time(encounter.stood_down_at, zone_name) if encounter.stood_down_at else ""
        return (
            f"Stood down at the desk{f' at {at}' if at else ''}: started by mistake. "
            "It stays on the list until a designee closes it or reopens it."
        )
    if encounter.status == Status.RESOLVED:
        at = clock_time(encounter.resolved_at, zone_name) if encounter.resolved_at else ""
        return f"Resolved{f' at {at}' if at else ''}."
    return ""


def _moment(encounter: Encounter, photo_context: dict[str, Any]) -> dict[str, Any]:
    """The top of the encounter page: what the desk's "Now" panel says, the document and its
    photo, who has the alert, and the desk's last activity. No names of the people involved."""
    db = webdb.session()
    zone_name = encounter.school.timezone
    say, situation, also = "", "", []
    if encounter.script_version_id is not None:
        panel = pack_by_id(db, encounter.script_version_id).panel(
            "start", desk_ops.facts_for(encounter)
        )
        say, situation = panel.top.say, panel.top.label
        also = [block.label for block in panel.earlier]
    last = db.scalar(
        select(EncounterEvent)
        .where(EncounterEvent.encounter_id == encounter.id, EncounterEvent.actor_kind == "kiosk")
        .order_by(EncounterEvent.seq.desc())
        .limit(1)
    )
    ack = _ack_label(encounter)
    photo = first_document_photo(photo_context)
    photos = len(photo_context["photos"])
    document_photos = sum(1 for p in photo_context["photos"] if p["kind"] == "document")
    return {
        "say": say,
        "situation": situation,
        "also": "; ".join(also),
        "document": _document_line(encounter),
        "acknowledged": f"{ack['by']} at {ack['at']}" if ack else "Not yet",
        "escalation": "" if ack else f"; alerted up to level {encounter.escalation_level}",
        "last_desk": {
            "at": clock_time(last.at, zone_name),
            "iso": last.at.isoformat(),
            "text": describe(last),
        }
        if last is not None
        else None,
        "state": _state_line(encounter),
        "status": encounter.status,
        "photo": {k: photo[k] for k in ("public_id", "url", "alt", "width", "height")}
        if photo
        else None,
        "photos": photos,
        "photo_hidden": document_photos > 0 and not photo_context["can_view_photos"],
        "offers": _offers(encounter, document_photos),
    }


def _page_context(encounter: Encounter) -> dict[str, Any]:
    db = webdb.session()
    messages = db.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.encounter_id == encounter.id)
        .order_by(OutboxMessage.id)
    ).all()
    acks = db.scalars(
        select(Acknowledgement)
        .where(Acknowledgement.encounter_id == encounter.id)
        .order_by(Acknowledgement.at)
    ).all()
    contacts = {
        c.id: c for c in db.scalars(select(Contact).where(Contact.school_id == encounter.school_id))
    }
    photo_context = office_photo_context(db, encounter)
    moment = _moment(encounter, photo_context)
    return {
        **_record_context(encounter),
        **photo_context,
        "moment": moment,
        "offers": moment["offers"],
        "messages": messages,
        "acks": [(a, reads.acknowledger_name(db, a)) for a in acks],
        "contacts": contacts,
        "events": [(e, describe(e)) for e in encounter.events],
        "summary": summary(encounter, now_utc()),
        "empty_form": EmptyForm(formdata=None),
        "message_form": forms.DeskMessageForm(formdata=None),
        "document_form": forms.ConfirmDocumentForm(
            formdata=None, doc_type=encounter.doc_confirmed_type or ""
        ),
        "consent_form": forms.ConsentCheckForm(formdata=None, result=encounter.consent_check),
        "guardian_form": forms.GuardianNoticeForm(formdata=None),
        "care_form": forms.CareForm(formdata=None, care=encounter.care_arranged),
        "resolve_form": forms.ResolveForm(formdata=None, outcome=encounter.outcome),
        "active": encounter.status in ACTIVE,
        "office_tel": "".join(c for c in encounter.school.office_phone if c.isdigit() or c == "+"),
    }


EVENT_LABELS = {
    "started": "Protocol started at the desk",
    "alert_enqueued": "Alert queued for level 1",
    "escalated": "Escalated",
    "realerted": "Reminder sent",
    "exigency_alerted": "Emergency alert sent to levels 1 and 2",
    "acknowledged": "Acknowledged",
    "agent_added": "Agent added",
    "agent_updated": "Agent updated",
    "request_recorded": "Request recorded",
    "person_named": "A person was named",
    "person_withdrawn": "A name was withdrawn by the desk",
    "document_triaged": "Desk's first impression of the document",
    "document_details": "Document details recorded",
    "document_confirmed": "Document type confirmed",
    "followup_enqueued": "Follow-up queued",
    "exigency_recorded": "Emergency question recorded",
    "outcome_recorded": "Outcome recorded",
    "desk_closed": "The desk closed its part",
    "stood_down": "Stood down: started by mistake",
    "staff_identified": "Staff member identified",
    "staff_pin_locked": "A staff PIN was locked",
    "desk_message_sent": "Message sent to the desk",
    "desk_message_shown": "The desk opened the message",
    "photo_added": "Photo added",
    "designee_on_scene": "Designee on scene",
    "counsel_contacted": "Counsel contacted",
    "consent_checked": "Claimed consent checked",
    "guardian_notice": "Parent or guardian notification recorded",
    "care_arranged": "The child's care arrangements recorded",
    "stand_down_closed": "Closed: it was a mistake",
    "reopened": "Reopened after the stand-down",
    "entry_recorded": "Agents going in without consent",
    "channel_changed": "How the request is made was corrected",
    "late_addition": "The desk sent more after the record ended (kept, marked as late)",
    "abandoned": "Closed at the desk: a new request began while it was still open",
    "same_visit_confirmed": "The desk confirmed an old open record is the same visit",
    "place_alerted": "Contacts for the place alerted",
    "resolved": "Resolved",
}


def describe(event: EncounterEvent) -> str:
    """One line for the timeline, from the event's categories (names never enter events)."""
    data = json.loads(event.data or "{}")
    label = EVENT_LABELS.get(event.kind, event.kind.replace("_", " "))
    if event.kind == "escalated":
        return f"{label} to level {data.get('level')}"
    if event.kind == "acknowledged":
        return f"{label} ({data.get('channel')})"
    if event.kind == "document_triaged" and data.get("first_impression"):
        return f"{label}: {DOC_LABELS.get(DocType(data['first_impression']), '')}"
    if event.kind == "document_confirmed":
        return f"{label}: {DOC_LABELS.get(DocType(data['confirmed_type']), '')}"
    if event.kind == "realerted":
        return f"{label} ({data.get('reminder')})"
    if event.kind in ("consent_checked",):
        return f"{label}: {str(data.get('result', '')).replace('_', ' ')}"
    if event.kind == "channel_changed" and data.get("channel"):
        return f"{label}: {str(data['channel']).replace('_', ' ')}"
    if event.kind == "place_alerted" and data.get("place"):
        return f"{label} ({str(data['place']).replace('_', ' ')})"
    return label


@bp.get("/office/encounters/<public_id>")
@login_required(*OFFICE_ROLES)
def encounter(public_id: str) -> Any:
    record = _find(public_id)
    _audit("encounter.view", f"encounter:{record.public_id}")
    return render_template("office/encounter.html", **_page_context(record))


@bp.get("/office/encounters/<public_id>/record")
@login_required(*OFFICE_ROLES)
def record_fragment(public_id: str) -> Any:
    """The recorded details, re-fetched by the page when new events arrive (audited)."""
    record = _find(public_id)
    _audit("encounter.refresh", f"encounter:{record.public_id}")
    return render_template("office/_record.html", **_record_context(record))


@bp.get("/office/encounters/<public_id>/photos")
@login_required(*OFFICE_ROLES)
def photos_fragment(public_id: str) -> Any:
    """The photo list, re-fetched by the page only when a photo is added: the images are
    served (and each view audited) by the photo route, so they are not reloaded with every
    change to the record."""
    record = _find(public_id)
    context = office_photo_context(webdb.session(), record)
    return render_template("office/_photos.html", encounter=record, **context)


@bp.get("/office/encounters/<public_id>/events.json")
@login_required(*OFFICE_ROLES)
def events_json(public_id: str) -> Response:
    """New timeline lines since a sequence number, and the current summary (no names)."""
    record = _find(public_id)
    since = request.args.get("since", default=0, type=int)
    zone = record.school.timezone
    new = [e for e in record.events if e.seq > since]
    # The top of the page changes only with an event: it is worked out only then.
    moment = _moment(record, office_photo_context(webdb.session(), record)) if new else None
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


def _act(public_id: str, form: Any, action: Any, done: str, form_key: str | None = None) -> Any:
    """Validate, run one operation, commit once, and come back to the record.

    The redirect lands at the top of the page, where the message and the moment are. A form
    with a problem comes back as typed, with the message next to its field.
    """
    record = _find(public_id)
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
    _audit("encounter.view", f"encounter:{record.public_id}")
    context = {**_page_context(record), form_key: form}
    return render_template("office/encounter.html", **context), 422


def _contact_for(user: User, encounter: Encounter) -> Contact | None:
    return webdb.session().scalar(
        select(Contact).where(Contact.user_id == user.id, Contact.school_id == encounter.school_id)
    )


@bp.post("/office/encounters/<public_id>/acknowledge")
@login_required(*OFFICE_ROLES)
def acknowledge(public_id: str) -> Response:
    user = _user()

    def run(db: Session, record: Encounter) -> None:
        contact = _contact_for(user, record)
        ops.acknowledge(
            db,
            record,
            _actor(user),
            now_utc(),
            "dashboard",
            contact_id=contact.id if contact else None,
            user_id=user.id,
        )

    return _act(public_id, EmptyForm(), run, "Acknowledged. The desk sees it now.")


@bp.post("/office/encounters/<public_id>/message")
@login_required(*OFFICE_ROLES)
def message_desk(public_id: str) -> Any:
    form = forms.DeskMessageForm()
    user = _user()
    return _act(
        public_id,
        form,
        lambda db, record: ops.send_desk_message(
            db, record, _actor(user), now_utc(), form.preset.data, form.text.data
        ),
        "Message sent to the desk.",
        "message_form",
    )


@bp.post("/office/encounters/<public_id>/document")
@login_required(*OFFICE_ROLES)
def confirm_document(public_id: str) -> Any:
    form = forms.ConfirmDocumentForm()
    user = _user()
    return _act(
        public_id,
        form,
        lambda db, record: ops.confirm_document(
            db, record, _actor(user), now_utc(), form.doc_type.data or ""
        ),
        "Document type confirmed. The desk's script follows it.",
        "document_form",
    )


@bp.post("/office/encounters/<public_id>/mark/<what>")
@login_required(*OFFICE_ROLES)
def mark(public_id: str, what: str) -> Response:
    if what not in ("on_scene", "counsel"):
        abort(404)
    user = _user()
    return _act(
        public_id,
        EmptyForm(),
        lambda db, record: ops.mark_time(db, record, _actor(user), now_utc(), what),
        "Recorded.",
    )


@bp.post("/office/encounters/<public_id>/consent")
@login_required(*OFFICE_ROLES)
def consent_check(public_id: str) -> Any:
    form = forms.ConsentCheckForm()
    user = _user()
    return _act(
        public_id,
        form,
        lambda db, record: ops.record_consent_check(
            db, record, _actor(user), now_utc(), form.result.data or ""
        ),
        "Consent check recorded.",
        "consent_form",
    )


@bp.post("/office/encounters/<public_id>/guardian")
@login_required(*OFFICE_ROLES)
def guardian_notice(public_id: str) -> Any:
    form = forms.GuardianNoticeForm()
    user = _user()

    def run(db: Session, record: Encounter) -> None:
        when = form.notified_at.data
        at = None
        if when is not None:
            at = when.replace(tzinfo=zone(record.school.timezone))
        ops.record_guardian_notice(
            db,
            record,
            _actor(user),
            now_utc(),
            form.notice.data or "",
            at,
            form.by.data,
            form.reason.data,
        )

    return _act(public_id, form, run, "Parent or guardian notification recorded.", "guardian_form")


@bp.post("/office/encounters/<public_id>/care")
@login_required(*OFFICE_ROLES)
def care(public_id: str) -> Any:
    form = forms.CareForm()
    user = _user()
    return _act(
        public_id,
        form,
        lambda db, record: ops.record_care(db, record, _actor(user), now_utc(), form.care.data),
        "How the child's care was arranged is recorded.",
        "care_form",
    )


@bp.post("/office/encounters/<public_id>/close")
@login_required(*OFFICE_ROLES)
def close_stood_down(public_id: str) -> Response:
    user = _user()
    return _act(
        public_id,
        EmptyForm(),
        lambda db, record: ops.close_stood_down(db, record, _actor(user), now_utc()),
        "Closed as a mistake. It has left the list of open encounters.",
    )


@bp.post("/office/encounters/<public_id>/reopen")
@login_required(*OFFICE_ROLES)
def reopen(public_id: str) -> Response:
    user = _user()
    return _act(
        public_id,
        EmptyForm(),
        lambda db, record: ops.reopen(db, record, _actor(user), now_utc()),
        "Reopened. Escalation resumes unless someone had acknowledged.",
    )


@bp.post("/office/encounters/<public_id>/resolve")
@login_required(*OFFICE_ROLES)
def resolve(public_id: str) -> Any:
    form = forms.ResolveForm()
    user = _user()
    return _act(
        public_id,
        form,
        lambda db, record: ops.resolve(
            db,
            record,
            _actor(user),
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
    user = current_user()
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
