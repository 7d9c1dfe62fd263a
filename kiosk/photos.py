"""Photos of documents and business cards: checked, re-encoded without metadata, stored privately.

No Flask here. The client's file name, extension and declared type are never trusted: the
content must be a JPEG or PNG that Pillow decodes completely. The stored copy is a fresh
encoding of the pixels only (no EXIF, GPS, XMP, ICC profile or comment), sealed in the
database row (AES-GCM bound to the photo's public id, see kiosk.sealing) so every app
server shares it and one backup holds the whole record, with its SHA-256 and the time it
was received. Photos kept before that are files under PHOTO_DIR until the rotate job
seals them into their rows.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageOps
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.models import Encounter, Photo, new_public_id
from kiosk.protocol.document_record import first_document
from kiosk.protocol.events import Actor, record_event
from kiosk.protocol.state import is_active
from kiosk.sealing import Keyring, SealError, keyring_of, open_bytes, seal_bytes

KINDS = ("document", "business_card")
# A 50-megapixel camera still fits; anything larger is refused before it is decoded.
MAX_PIXELS = 50_000_000
MAX_PHOTOS_PER_ENCOUNTER = 30
JPEG_QUALITY = 85

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Pillow reports multi-picture phone JPEGs as MPO; the first picture is kept, as a JPEG.
FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG"}
OUTPUT = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png")}
STORED_NAME = re.compile(r"^[0-9a-f]{32}\.(jpg|png)$")

NOT_A_PHOTO = "This file is not a JPEG or PNG photo."
UNREADABLE = "This photo could not be read completely. Please take it again."
TOO_MANY_PIXELS = "This photo has too many pixels. Please take it again at a lower resolution."


class PhotoError(ValueError):
    """A photo the kiosk cannot keep; the message is shown to the person at the desk."""


class PhotoUnavailable(PhotoError):
    """The stored file cannot be served."""


class PhotoMissing(PhotoUnavailable):
    """The stored file is gone."""


class PhotoMismatch(PhotoUnavailable):
    """The stored file no longer matches the SHA-256 recorded when it was taken."""


def size_words(limit: int) -> str:
    """Say a byte limit the way people say it: '10 MB', '200 KB'."""
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):.3g} MB"
    return f"{max(1, round(limit / 1024))} KB"


@dataclass(frozen=True)
class Encoded:
    """A re-encoded photo: the bytes to store and what the row records about them."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def _decode(data: bytes) -> Image.Image:
    """Open and fully decode a JPEG or PNG, whatever the upload claimed to be."""
    if not (data.startswith(JPEG_MAGIC) or data.startswith(PNG_MAGIC)):
        raise PhotoError(NOT_A_PHOTO)
    try:
        image = Image.open(io.BytesIO(data), formats=["JPEG", "PNG"])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning is an exception only where warnings are errors (the tests); the
        # pixel count below refuses the same images everywhere else.
        raise PhotoError(TOO_MANY_PIXELS) from exc
    except Exception as exc:  # Pillow's parsers raise many types on malformed input.
        raise PhotoError(NOT_A_PHOTO) from exc
    if image.format not in FORMATS:
        raise PhotoError(NOT_A_PHOTO)
    width, height = image.size
    if width < 1 or height < 1:
        raise PhotoError(NOT_A_PHOTO)
    if width * height > min(MAX_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_PIXELS):
        raise PhotoError(TOO_MANY_PIXELS)
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(TOO_MANY_PIXELS) from exc
    except Exception as exc:  # a truncated or corrupt file fails here
        raise PhotoError(UNREADABLE) from exc
    return image


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a photo with unreadable EXIF is kept as it is."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # damaged EXIF must not cost the photo: the EXIF is dropped anyway
        return image.copy()


def reencode(data: bytes) -> Encoded:
    """Check the content and return a fresh encoding of its pixels, with no metadata."""
    image = _decode(data)
    target = FORMATS[str(image.format)]
    clean = _upright(image)
    transparency = clean.info.get("transparency") if target == "PNG" else None
    # Savers copy some keys from info (PNG: icc_profile; JPEG: comment): start empty.
    clean.info = {}
    params: dict[str, object] = {}
    if target == "JPEG":
        params = {"quality": JPEG_QUALITY}
    elif transparency is not None:
        params = {"transparency": transparency}
    output = io.BytesIO()
    try:
        clean.save(output, format=target, **params)
    except Exception as exc:  # an image mode the format cannot hold
        raise PhotoError(UNREADABLE) from exc
    content_type, extension = OUTPUT[target]
    return Encoded(output.getvalue(), content_type, extension, clean.width, clean.height)


def prepare_photo(data: bytes, max_bytes: int) -> Encoded:
    """Check and re-encode one photo: the slow part, done before any write lock is taken.

    Nothing of the upload survives but its pixels: no metadata, a type from the content.
    """
    if not data:
        raise PhotoError("This file is empty. Please take the photo again.")
    if len(data) > max_bytes:
        raise PhotoError(f"This photo is larger than {size_words(max_bytes)}.")
    return reencode(data)


def store_prepared(
    session: Session,
    *,
    encounter: Encounter,
    kind: str,
    encoded: Encoded,
    now: datetime,
    kiosk_id: int | None,
    actor: Actor,
) -> Photo:
    """Keep a prepared photo: its row (the image sealed) and a photo_added event. Flushes."""
    if kind not in KINDS:
        raise PhotoError("Choose what the photo shows: the document or a business card.")
    if encounter.desk_closed_at is not None or not is_active(encounter.status):
        raise PhotoError("This record is closed at the desk.")
    count = session.scalar(
        select(func.count()).select_from(Photo).where(Photo.encounter_id == encounter.id)
    )
    if (count or 0) >= MAX_PHOTOS_PER_ENCOUNTER:
        raise PhotoError(
            f"This record already has {MAX_PHOTOS_PER_ENCOUNTER} photos, the most it can keep."
        )
    digest = hashlib.sha256(encoded.data).hexdigest()
    public_id = new_public_id()
    content = seal_bytes(keyring_of(session), encoded.data, "photos", "content", public_id)
    document = first_document(session, encounter)
    photo = Photo(
        public_id=public_id,
        encounter_id=encounter.id,
        document_id=document.id if document else None,
        kind=kind,
        sha256=digest,
        content=content,
        content_type=encoded.content_type,
        size_bytes=len(encoded.data),
        width=encoded.width,
        height=encoded.height,
        captured_at=now,
        uploaded_by_kiosk_id=kiosk_id,
    )
    session.add(photo)
    session.flush()
    record_event(
        session,
        encounter,
        "photo_added",
        actor,
        now,
        {"photo": photo.public_id, "kind": kind, "sha256": digest},
    )
    return photo


def legacy_path(photo_dir: str, stored_name: str) -> Path:
    if not STORED_NAME.match(stored_name):
        raise PhotoMissing("This photo's stored name is not valid.")
    return Path(photo_dir) / stored_name


def read_legacy_file(photo: Photo, photo_dir: str) -> bytes:
    """The bytes of a photo kept as a file before photos moved into the database."""
    if not photo.stored_name:
        raise PhotoMissing("This photo has no stored image.")
    try:
        return legacy_path(photo_dir, photo.stored_name).read_bytes()
    except FileNotFoundError as exc:
        raise PhotoMissing("This photo's file is missing.") from exc


def open_photo(photo: Photo, photo_dir: str, keyring: Keyring) -> bytes:
    """Return the image, opened and checked against the SHA-256 recorded when it was taken."""
    if photo.content is not None:
        try:
            data = open_bytes(keyring, photo.content, "photos", "content", photo.public_id)
        except SealError as exc:
            raise PhotoMismatch("This photo does not open with its row.") from exc
    else:
        data = read_legacy_file(photo, photo_dir)
    if hashlib.sha256(data).hexdigest() != photo.sha256:
        raise PhotoMismatch("This photo's file does not match its recorded SHA-256.")
    return data
