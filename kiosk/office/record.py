"""What the encounter page shows: the moment at the top, the actions it calls for, the
recorded details and the timeline. Reads only."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import (
    url_for,
)
from sqlalchemy import select

from kiosk import reads, webdb
from kiosk.auth.forms import EmptyForm
from kiosk.auth.policy import current_user, may
from kiosk.clock import now_utc
from kiosk.localtime import clock_time, local
from kiosk.models import (
    Acknowledgement,
    Contact,
    DeskMessage,
    Encounter,
    EncounterEvent,
    LateAddition,
    OutboxMessage,
    ScriptVersion,
)
from kiosk.office import forms
from kiosk.office.photos import first_document_photo, office_photo_context
from kiosk.protocol import document_record
from kiosk.protocol import encounters as desk_ops
from kiosk.protocol.documents import DOC_LABELS, DocType
from kiosk.protocol.scriptstore import pack_by_id, pack_for
from kiosk.protocol.state import ACTIVE, Status
from kiosk.retention import removal_notice
from kiosk.vocabulary import OUTCOMES, RELATIONS, REQUEST_KINDS


def ack_label(encounter: Encounter) -> dict[str, Any] | None:
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
        "acknowledged": ack_label(encounter),
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
        "burst": desk_ops.burst_notice(encounter),
    }


def script_preview(encounter: Encounter) -> list[tuple[str, str]]:
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


def request_kinds(encounter: Encounter) -> list[str]:
    return [k for k in encounter.request_kinds.split(",") if k]


def script_approval(encounter: Encounter, version: ScriptVersion | None) -> str:
    """Whether counsel had approved the version this encounter showed, when it began.

    An encounter keeps the version it started with, even if counsel approves another (or
    this one) while it is open, so the words follow that version, not the one in use now.
    """
    if version is None:
        return ""
    zone_name = encounter.school.timezone
    if version.approved_at is None:
        return "not yet approved by the district's counsel"
    when = local(version.approved_at, zone_name).strftime("%Y-%m-%d")
    if version.approved_at > encounter.started_at:
        return (
            "not yet approved by the district's counsel when this encounter began "
            f"(approved on {when})"
        )
    return f"approved by the district's counsel ({version.approved_by}, {when})"


def record_context(encounter: Encounter) -> dict[str, Any]:
    db = webdb.session()
    version = db.get(ScriptVersion, encounter.script_version_id)
    return {
        "encounter": encounter,
        "school": encounter.school,
        "removed": removal_notice(encounter),
        "document": document_record.first_document(db, encounter),
        "doc_labels": {t.value: label for t, label in DOC_LABELS.items()},
        "request_labels": dict(REQUEST_KINDS),
        "relations": dict(RELATIONS),
        "outcomes": dict(OUTCOMES),
        "parent_sought": "adult" in request_kinds(encounter),
        "pack": pack_for(version) if version else None,
        "script_version": version,
        "script_approval": script_approval(encounter, version),
        "script_preview": script_preview(encounter),
        "desk_messages": db.scalars(
            select(DeskMessage)
            .where(DeskMessage.encounter_id == encounter.id)
            .order_by(DeskMessage.sent_at)
        ).all(),
        "late_additions": [
            (row, json.loads(row.content) if row.content else {})
            for row in db.scalars(
                select(LateAddition)
                .where(LateAddition.encounter_id == encounter.id)
                .order_by(LateAddition.id)
            )
        ],
    }


def offers(encounter: Encounter, document_photos: int) -> dict[str, bool]:
    """Which actions the page offers now, so that a phone shows only what the moment calls
    for; the operations still check each one when it is used."""
    active = encounter.status in ACTIVE
    has_document = bool(encounter.doc_first_impression or encounter.doc_confirmed_type)
    return {
        "acknowledge": active and encounter.first_acknowledged_at is None,
        "confirm_document": active and (has_document or document_photos > 0),
        "care": active and "adult" in request_kinds(encounter),
        "stand_down": encounter.status == Status.STOOD_DOWN,
    }


def document_line(encounter: Encounter) -> str:
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


def state_line(encounter: Encounter) -> str:
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


def moment_of(encounter: Encounter, photo_context: dict[str, Any]) -> dict[str, Any]:
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
    ack = ack_label(encounter)
    photo = first_document_photo(photo_context)
    photos = len(photo_context["photos"])
    document_photos = sum(1 for p in photo_context["photos"] if p["kind"] == "document")
    return {
        "say": say,
        "situation": situation,
        "also": "; ".join(also),
        "document": document_line(encounter),
        "acknowledged": f"{ack['by']} at {ack['at']}" if ack else "Not yet",
        "escalation": "" if ack else f"; alerted up to level {encounter.escalation_level}",
        "last_desk": {
            "at": clock_time(last.at, zone_name),
            "iso": last.at.isoformat(),
            "text": describe(last),
        }
        if last is not None
        else None,
        "state": state_line(encounter),
        "burst": desk_ops.burst_notice(encounter),
        "status": encounter.status,
        "photo": {k: photo[k] for k in ("public_id", "url", "alt", "width", "height")}
        if photo
        else None,
        "photos": photos,
        "photo_hidden": document_photos > 0 and not photo_context["can_view_photos"],
        "offers": offers(encounter, document_photos),
    }


def page_context(encounter: Encounter) -> dict[str, Any]:
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
    moment = moment_of(encounter, photo_context)
    return {
        **record_context(encounter),
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
        # A reader (a reviewer) sees the record without the actions they may not take.
        "may_act": may(current_user(), "encounter.resolve", encounter.school_id),
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
    "escalation_level_empty": "No contacts set up at this level; went on to the next",
    "abandoned": "Closed at the desk: a new request began while it was still open",
    "same_visit_confirmed": "The desk confirmed an old open record is the same visit",
    "place_alerted": "Contacts for the place alerted",
    "resolved": "Resolved",
    "kiosk_burst": "Flagged: many requests from this kiosk in a short time",
}


def describe(event: EncounterEvent) -> str:
    """One line for the timeline, from the event's categories (names never enter events)."""
    data = json.loads(event.data or "{}")
    label = EVENT_LABELS.get(event.kind, event.kind.replace("_", " "))
    if event.kind == "escalated":
        return f"{label} to level {data.get('level')}"
    if event.kind == "escalation_level_empty":
        return f"No contacts set up at level {data.get('level')}; went on to the next"
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
    if event.kind == "kiosk_burst":
        started, minutes = data.get("started"), data.get("minutes")
        return f"Flagged: this kiosk started {started} requests in {minutes} minutes"
    if event.kind == "place_alerted" and data.get("place"):
        return f"{label} ({str(data['place']).replace('_', ' ')})"
    return label
