"""Photos at the document step: the tablet's camera (or a file on a PC), never shown back."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from wtforms import RadioField
from wtforms.validators import Optional

from kiosk import webdb
from kiosk.auth.policy import current_kiosk
from kiosk.clock import now_utc
from kiosk.desk import forms
from kiosk.desk.blueprint import bp
from kiosk.desk.views import INVALID, _actor, _document_page, _json, with_encounter
from kiosk.forms import options
from kiosk.models import Encounter, Photo
from kiosk.notify.localtime import clock_time
from kiosk.photos import PhotoError, discard_file, store_photo
from kiosk.protocol import encounters as ops
from kiosk.protocol.documents import TriageAnswers

PHOTO_HINT = "Photograph the document or a business card. Do not photograph a badge or ID card."
PHOTO_KINDS = [("document", "The document"), ("business_card", "A business card")]
KIND_WORDS = {"document": "Document", "business_card": "Business card"}


class PhotoForm(FlaskForm):
    photo = FileField(
        "Photo",
        description=PHOTO_HINT,
        validators=[FileRequired("Choose or take a photo first.")],
        # The tablet opens its back camera; a PC offers a file. The server checks the
        # content whatever this says.
        render_kw={"accept": "image/jpeg,image/png", "capture": "environment"},
    )
    photo_kind = RadioField(
        "What the photo shows",
        choices=options(PHOTO_KINDS),
        default="document",
        validators=[Optional()],
    )


def photo_context(encounter: Encounter, photo_form: PhotoForm | None = None) -> dict[str, Any]:
    """What the document page's photo section needs: the form and a list without images."""
    photos = webdb.session().scalars(
        select(Photo).where(Photo.encounter_id == encounter.id).order_by(Photo.id)
    )
    zone = encounter.school.timezone
    return {
        "photo_form": photo_form or PhotoForm(formdata=None),
        "photos": [
            {
                "kind": KIND_WORDS.get(photo.kind, photo.kind),
                "time": clock_time(photo.captured_at, zone),
                "sha": photo.sha256[:8],
            }
            for photo in photos
        ],
    }


@bp.post("/document/photos")
@with_encounter
def add_photo(encounter: Encounter) -> Any:
    """Check and keep one photo; the desk sees only that it was added."""
    form = PhotoForm()
    if form.validate_on_submit():
        db = webdb.session()
        photo_dir = current_app.config["PHOTO_DIR"]
        max_bytes = int(current_app.config["PHOTO_MAX_BYTES"])
        upload = form.photo.data
        kiosk = current_kiosk()
        actor = _actor(encounter)
        # Nothing is written yet: end the read transaction, so that SQLite's write lock
        # (taken at BEGIN for a POST) is not held while the photo is decoded; an alert
        # tap at another desk must never wait behind a photo.
        db.commit()
        try:
            photo = store_photo(
                db,
                encounter=encounter,
                kind=form.photo_kind.data or "document",
                # One byte past the limit is enough to know it is too large.
                data=upload.stream.read(max_bytes + 1),
                filename=upload.filename,
                photo_dir=photo_dir,
                max_bytes=max_bytes,
                now=now_utc(),
                kiosk_id=kiosk.id if kiosk else None,
                actor=actor,
            )
        except PhotoError as exc:
            form.photo.errors = [str(exc)]
        else:
            try:
                db.commit()
            except SQLAlchemyError:
                discard_file(photo_dir, photo.stored_name)
                raise
            flash("Photo added.", "info")
            return redirect(url_for("desk.document") + "#photos")
    db = webdb.session()
    current = ops.first_document(db, encounter)
    answers = TriageAnswers.from_mapping(_json(current.answers) if current else {})
    triage_form = forms.TriageForm(formdata=None, data=answers.to_dict())
    details_form = forms.DocumentDetailsForm(formdata=None, obj=current)
    return _document_page(encounter, triage_form, details_form, INVALID, photo_form=form)
