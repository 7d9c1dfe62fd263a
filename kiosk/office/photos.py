"""Document photos for the district office: served to those who may read the record."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk import audit, webdb
from kiosk.auth.policy import current_user, may, requires
from kiosk.clock import now_utc
from kiosk.localtime import local
from kiosk.models import Encounter, Photo
from kiosk.office.blueprint import bp
from kiosk.office.common import office_user
from kiosk.photos import PhotoMismatch, PhotoUnavailable, open_photo
from kiosk.retention import removal_notice
from kiosk.sealing import keyring_of

KIND_ALT = {"document": "Photo of the document", "business_card": "Photo of a business card"}
THUMBNAIL = 240
PARTIAL = "office/_photos.html"
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}


def _thumbnail_size(width: int, height: int) -> tuple[int, int]:
    scale = min(THUMBNAIL / max(width, 1), THUMBNAIL / max(height, 1), 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def office_photo_context(session: Session, encounter: Encounter) -> dict[str, Any]:
    """The encounter page's photo section; images only for those allowed to see them."""
    user = current_user()
    allowed = may(user, "encounter.read", encounter.school_id)
    zone = encounter.school.timezone
    rows = session.scalars(
        select(Photo).where(Photo.encounter_id == encounter.id).order_by(Photo.id)
    ).all()
    photos = []
    for row in rows:
        label = KIND_ALT.get(row.kind, "Photo")
        thumb_width, thumb_height = _thumbnail_size(row.width, row.height)
        photos.append(
            {
                "public_id": row.public_id,
                "kind": row.kind,
                "url": url_for("office.photo", public_id=row.public_id),
                "label": label,
                "alt": f"{label}, captured {local(row.captured_at, zone):%H:%M}",
                "captured_at": row.captured_at,
                "sha256": row.sha256,
                "width": row.width,
                "height": row.height,
                "thumb_width": thumb_width,
                "thumb_height": thumb_height,
            }
        )
    return {
        "photos": photos,
        "can_view_photos": allowed,
        "photos_partial": PARTIAL,
        # A purged encounter's photos keep their rows (times, SHA-256), not their images.
        "photos_removed": removal_notice(encounter),
    }


def first_document_photo(context: dict[str, Any]) -> dict[str, Any] | None:
    """The first photo of the document, if the signed-in user may see photos."""
    if not context["can_view_photos"] or context.get("photos_removed"):
        return None
    return next((p for p in context["photos"] if p["kind"] == "document"), None)


@bp.get("/office/photos/<public_id>")
@requires("encounter.read")
def photo(public_id: str) -> Response:
    """Serve a photo to those who may see it; the file is read and checked before the view
    is audited in one short write."""
    user = office_user()
    db = webdb.session()
    row = db.scalar(select(Photo).where(Photo.public_id == public_id))
    encounter = db.get(Encounter, row.encounter_id) if row is not None else None
    # 404 for "not yours" as for "not there": the answer does not reveal that it exists.
    if row is None or encounter is None or not may(user, "encounter.read", encounter.school_id):
        abort(404)
    try:
        data = open_photo(row, current_app.config["PHOTO_DIR"], keyring_of(db))
    except PhotoMismatch:
        current_app.logger.error("photo %s does not match its recorded SHA-256", row.public_id)
        abort(500)
    except PhotoUnavailable:
        current_app.logger.error("photo %s has no stored file", row.public_id)
        abort(404)
    with webdb.unit_of_work() as work:
        audit.record(
            work,
            current_app.config["AUDIT_KEY"],
            now_utc(),
            actor=f"user:{user.public_id}",
            action="photo.view",
            subject=f"photo:{row.public_id}",
        )
    extension = EXTENSIONS.get(row.content_type, "jpg")
    response = Response(data, mimetype=row.content_type)
    response.headers["Content-Disposition"] = (
        f'inline; filename="photo-{row.public_id}.{extension}"'
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
