"""Photos at the document step: the tablet's camera (or a file on a PC), never shown back."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk import webdb
from kiosk.auth.policy import current_kiosk
from kiosk.clock import now_utc
from kiosk.desk import forms
from kiosk.localtime import clock_time
from kiosk.models import Encounter, Photo
from kiosk.photos import Encoded, PhotoError, store_prepared
from kiosk.photos import prepare_photo as prepare_photo_bytes
from kiosk.protocol.events import Actor

KIND_WORDS = {"document": "Document", "business_card": "Business card"}


def photo_list(encounter: Encounter) -> list[dict[str, Any]]:
    """What the desk sees of the photos: that they were added, never the images."""
    photos = webdb.session().scalars(
        select(Photo).where(Photo.encounter_id == encounter.id).order_by(Photo.id)
    )
    zone = encounter.school.timezone
    return [
        {
            "kind": KIND_WORDS.get(photo.kind, photo.kind),
            "time": clock_time(photo.captured_at, zone),
            "sha": photo.sha256[:8],
        }
        for photo in photos
    ]


def prepare_photo(form: forms.DocumentForm) -> Encoded | None:
    """Check and re-encode the photo the form carries, if any, before the write lock.

    A problem goes next to the field; "Add photo" with no photo says so.
    """
    upload = form.photo.data
    if upload is None:
        if request.form.get("action") == "photo" or request.endpoint == "desk.add_photo":
            form.photo.errors = ["Choose or take a photo first."]
        return None
    max_bytes = int(current_app.config["PHOTO_MAX_BYTES"])
    # One byte past the limit is enough to know it is too large.
    data = upload.stream.read(max_bytes + 1)
    try:
        return prepare_photo_bytes(data, max_bytes)
    except PhotoError as exc:
        form.photo.errors = [str(exc)]
        return None


def keep_photo(
    session: Session,
    encounter: Encounter,
    form: forms.DocumentForm,
    encoded: Encoded,
    actor: Actor,
) -> Photo | None:
    """Keep a prepared photo inside the caller's unit of work; a refusal goes to the field."""
    kiosk = current_kiosk()
    try:
        return store_prepared(
            session,
            encounter=encounter,
            kind=form.photo_kind.data or "document",
            encoded=encoded,
            now=now_utc(),
            kiosk_id=kiosk.id if kiosk else None,
            actor=actor,
        )
    except PhotoError as exc:
        form.photo.errors = [str(exc)]
        return None
