"""The API's routes: HTTP only. The list is the review log's query (kiosk.review.log) with
the log's own filter form; every answer holds categories, states and times, the agents as
recorded, and a count of the people named: never a name of theirs and never free text.

FERPA request records are served beside these as /api/v1/ferpa/... (kiosk.api.ferpa), read
through the same token check (kiosk.auth.policy.token_required) and described in
kiosk.api.openapi.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from flask import Response, jsonify, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk import webdb
from kiosk.api import openapi
from kiosk.api.blueprint import bp
from kiosk.auth.policy import API_READ, api_refusal, api_user, may, schools_for, token_required
from kiosk.models import (
    Acknowledgement,
    Encounter,
    EncounterEvent,
    NamedPerson,
    OutboxMessage,
    Photo,
    ScriptVersion,
    User,
)
from kiosk.review import log
from kiosk.review.forms import ReviewFilterForm, make_cursor

PUBLIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _subject(public_id: str = "") -> str:
    """The resource a use of the API reads, for its audit entry: an encounter's id only if
    there is one, never whatever was typed into the address (it could be a name)."""
    if not public_id:
        return "encounters"
    found = PUBLIC_ID.match(public_id) and webdb.session().scalar(
        select(Encounter.id).where(Encounter.public_id == public_id)
    )
    return f"encounter:{public_id}" if found else "encounter:(no such id)"


def utc(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _visible(user: User) -> Any:
    """The encounters of the schools where the holder reads through the API."""
    query = select(Encounter)
    schools = schools_for(user, API_READ)
    if schools is not None:
        query = query.where(Encounter.school_id.in_(schools or {-1}))
    return query


def _people_named(db: Session, ids: list[int]) -> dict[int, int]:
    """How many people each encounter names (withdrawn names not counted), never who."""
    if not ids:
        return {}
    rows = db.execute(
        select(NamedPerson.encounter_id, func.count(NamedPerson.id))
        .where(NamedPerson.encounter_id.in_(ids), NamedPerson.withdrawn_at.is_(None))
        .group_by(NamedPerson.encounter_id)
    )
    return {encounter_id: int(count) for encounter_id, count in rows}


def summary(encounter: Encounter, people_named: int) -> dict[str, Any]:
    """An encounter as the log lists it: the review export's fields, as JSON types."""
    return {
        "public_id": encounter.public_id,
        "school": {"public_id": encounter.school.public_id, "name": encounter.school.name},
        "started_at": utc(encounter.started_at),
        "channel": encounter.channel,
        "status": encounter.status,
        "outcome": encounter.outcome,
        "document_first_impression": encounter.doc_first_impression,
        "document_confirmed": encounter.doc_confirmed_type,
        "exigency": encounter.exigency,
        "stood_down": encounter.stood_down_at is not None,
        "first_acknowledged_at": utc(encounter.first_acknowledged_at),
        "acknowledged_late": bool(encounter.acknowledged_late),
        "resolved_at": utc(encounter.resolved_at),
        "people_named": people_named,
    }


def _filters(db: Session, user: User) -> tuple[log.Filters | None, dict[str, list[str]]]:
    """The log's filters from the query string, checked by the log's own form."""
    schools = log.readable_schools(db, schools_for(user, API_READ))
    form = ReviewFilterForm(request.args, schools=[(s.public_id, s.name) for s in schools])
    if not form.validate():
        return None, {name: list(errors) for name, errors in form.errors.items()}
    return form.filters({s.public_id: s.id for s in schools}), {}


@bp.get("/encounters", endpoint="encounters")
@token_required(API_READ, _subject)
def encounters() -> Any:
    """Every encounter the holder may read, newest first, a page at a time by key."""
    db = webdb.session()
    user = api_user()
    filters, errors = _filters(db, user)
    if filters is None:
        response = jsonify(
            error="invalid_filters", message="Correct the filters named here.", fields=errors
        )
        response.status_code = 400
        return response
    rows, more = log.page(db, _visible(user), filters)
    counts = _people_named(db, [row.id for row in rows])
    cursor = make_cursor(rows[-1].started_at, rows[-1].id) if more else None
    kept = {name: value for name in openapi.FILTER_NAMES if (value := request.args.get(name))}
    return jsonify(
        items=[summary(row, counts.get(row.id, 0)) for row in rows],
        next_cursor=cursor,
        next_url=url_for("api.encounters", **{**kept, "after": cursor}) if cursor else None,
    )


def _readable(public_id: str) -> Encounter | None:
    record = webdb.session().scalar(select(Encounter).where(Encounter.public_id == public_id))
    if record is None or not may(api_user(), API_READ, record.school_id):
        # Another school's encounter is not told apart from one that does not exist.
        return None
    return record


def _not_found() -> Response:
    response: Response = api_refusal(404, "not_found", "There is no encounter with this id.")
    return response


def _agents(encounter: Encounter) -> list[dict[str, Any]]:
    return [
        {
            "position": agent.position,
            "name": agent.name,
            "badge_number": agent.badge_number,
            "agency_printed": agent.agency_printed,
            "agency_pick": agent.agency_pick,
            "title": agent.title,
            "phone": agent.phone,
            "supervisor_name": agent.supervisor_name,
            "supervisor_phone": agent.supervisor_phone,
            "id_shown": [part for part in (agent.id_shown or "").split(",") if part],
            "attire": agent.attire,
            "card_kept": bool(agent.card_kept),
        }
        for agent in encounter.agents
    ]


def _documents(db: Session, encounter: Encounter) -> list[dict[str, Any]]:
    photos = dict(
        db.execute(
            select(Photo.document_id, func.count(Photo.id))
            .where(Photo.encounter_id == encounter.id, Photo.document_id.is_not(None))
            .group_by(Photo.document_id)
        ).all()
    )
    return [
        {
            "position": document.position,
            "first_impression": document.first_impression,
            "pick": document.pick,
            "names_person": document.names_person,
            "confirmed_type": document.confirmed_type,
            "confirmed_at": utc(document.confirmed_at),
            "dates": document.dates,
            "matches_school": document.matches_school,
            "photos": int(photos.get(document.id, 0)),
        }
        for document in encounter.documents
    ]


def _notifications(db: Session, encounter: Encounter) -> list[dict[str, Any]]:
    """Each message to a contact, with that contact's first acknowledgement beside it."""
    first_ack: dict[int, datetime] = {}
    for ack in db.scalars(
        select(Acknowledgement)
        .where(Acknowledgement.encounter_id == encounter.id)
        .order_by(Acknowledgement.at, Acknowledgement.id)
    ):
        if ack.contact_id is not None:
            first_ack.setdefault(ack.contact_id, ack.at)
    messages = db.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.encounter_id == encounter.id)
        .order_by(OutboxMessage.id)
    )
    return [
        {
            "channel": message.channel,
            "kind": message.kind,
            "level": message.level,
            "status": message.status,
            "created_at": utc(message.created_at),
            "sent_at": utc(message.sent_at),
            "acknowledged_at": utc(first_ack.get(message.contact_id))
            if message.contact_id is not None
            else None,
        }
        for message in messages
    ]


def _script(db: Session, encounter: Encounter) -> dict[str, Any] | None:
    if encounter.script_version_id is None:
        return None
    version = db.get(ScriptVersion, encounter.script_version_id)
    if version is None:
        return None
    return {"id": version.id, "label": version.label, "sha256": version.sha256}


@bp.get("/encounters/<public_id>", endpoint="encounter")
@token_required(API_READ, _subject)
def encounter(public_id: str) -> Any:
    """One encounter: who came, what was asked, the documents, who was told and when, the
    outcome; the people named as a count only."""
    record = _readable(public_id)
    if record is None:
        return _not_found()
    db = webdb.session()
    return jsonify(
        {
            **summary(record, _people_named(db, [record.id]).get(record.id, 0)),
            "place": record.place,
            "agents_present": record.agents_present,
            "first_alert_sent_at": utc(record.first_alert_sent_at),
            "desk_closed_at": utc(record.desk_closed_at),
            "stood_down_at": utc(record.stood_down_at),
            "escalation_level": record.escalation_level,
            "script_version": _script(db, record),
            "agents": _agents(record),
            "request": {
                "kinds": [kind for kind in record.request_kinds.split(",") if kind],
                "other_recorded": bool(record.request_other),
                "purpose_recorded": bool(record.purpose),
                "consent_claimed": record.consent_claimed,
            },
            "documents": _documents(db, record),
            "notifications": _notifications(db, record),
            "events_url": url_for("api.encounter_events", public_id=record.public_id),
        }
    )


@bp.get("/encounters/<public_id>/events", endpoint="encounter_events")
@token_required(API_READ, _subject)
def encounter_events(public_id: str) -> Any:
    """The encounter's timeline, oldest first. Events hold categories only: free text that
    may name someone is recorded in them as the word "recorded"."""
    record = _readable(public_id)
    if record is None:
        return _not_found()
    rows = webdb.session().scalars(
        select(EncounterEvent)
        .where(EncounterEvent.encounter_id == record.id)
        .order_by(EncounterEvent.seq)
    )
    return jsonify(
        public_id=record.public_id,
        events=[
            {
                "seq": event.seq,
                "at": utc(event.at),
                "kind": event.kind,
                "actor_kind": event.actor_kind,
                "actor_label": event.actor_label,
                "script_version_id": event.script_version_id,
                "data": json.loads(event.data or "{}"),
            }
            for event in rows
        ],
    )


@bp.get("/openapi.json", endpoint="openapi")
def openapi_document() -> Any:
    """The API's description: public, so an integrator can start from it alone."""
    return jsonify(openapi.document())
