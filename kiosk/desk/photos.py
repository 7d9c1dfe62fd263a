"""Photos at the document step: the tablet's camera (or a file on a PC), never shown back."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from sqlalchemy import select

from kiosk import webdb
from kiosk.auth.policy import current_kiosk
from kiosk.clock import now_utc
from kiosk.desk import forms
from kiosk.models import Encounter, Photo
from kiosk.notify.localtime import clock_time
from kiosk.photos import PhotoError, store_photo
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


def keep_photo(encounter: Encounter, form: forms.DocumentForm, actor: Actor) -> Photo | None:
    """Check and keep the photo the form carries, if any; a problem goes next to the field.

    Nothing is written before this: the read transaction ends first, so that SQLite's write
    lock (taken at BEGIN for a POST) is not held while the photo is decoded; an alert tap at
    another desk must never wait behind a photo.
    """
    upload = form.photo.data
    if upload is None:
        if request.form.get("action") == "photo" or request.endpoint == "desk.add_photo":
            form.photo.errors = ["Choose or take a photo first."]
        return None
    db = webdb.session()
    max_bytes = int(current_app.config["PHOTO_MAX_BYTES"])
    kiosk = current_kiosk()
    # One byte past the limit is enough to know it is too large.
    data = upload.stream.read(max_bytes + 1)
    db.commit()
    try:
        return store_photo(
            db,
            encounter=encounter,
            kind=form.photo_kind.data or "document",
            data=data,
            filename=upload.filename,
            photo_dir=current_app.config["PHOTO_DIR"],
            max_bytes=max_bytes,
            now=now_utc(),
            kiosk_id=kiosk.id if kiosk else None,
            actor=actor,
        )
    except PhotoError as exc:
        form.photo.errors = [str(exc)]
        return None
