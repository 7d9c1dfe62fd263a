"""Document photos: checked by content, re-encoded without metadata, stored privately,
served only to the district office people who may see them, and every view audited."""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageCms, PngImagePlugin
from sqlalchemy import select, update
from sqlalchemy.orm import undefer
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from kiosk import audit
from kiosk.db import writing
from kiosk.models import AuditEntry, Document, Encounter, EncounterEvent, Photo, User
from kiosk.photos import MAX_PIXELS, PhotoError, reencode
from kiosk.sealing import open_bytes
from kiosk.webdb import database
from tests.conftest import csrf_token, enroll_client, tap_start
from tests.test_policy import complete_second_factor

PASSWORD = "demo-password"
LINCOLN_DESIGNEE = "dana.reyes@demo-district.example"
RIVERSIDE_DESIGNEE = "jordan.kim@demo-district.example"
ADMIN = "admin@demo-district.example"
NOT_A_PHOTO = "This file is not a JPEG or PNG photo."
UNREADABLE = "This photo could not be read completely. Please take it again."
TOO_MANY_PIXELS = "This photo has too many pixels. Please take it again at a lower resolution."
LATITUDE = (40.0, 26.0, 46.0)


# --- images ------------------------------------------------------------------------------


def picture(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """A small image with some detail (noise), so encoders have something to keep."""
    return Image.effect_noise(size, 64).convert(mode)


def gps_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"  # Make
    exif[0x0132] = "2026:03:02 10:02:03"  # DateTime
    exif[0x0112] = orientation  # Orientation
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: LATITUDE, 3: "W", 4: (79.0, 58.0, 56.0)})
    return exif


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_gps(size: tuple[int, int] = (64, 48), orientation: int = 1) -> bytes:
    output = io.BytesIO()
    picture(size).save(
        output,
        "JPEG",
        quality=92,
        exif=gps_exif(orientation),
        comment=b"taken at 12 Main Street",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">GPSLatitude 40,26.76N</x:xmpmeta>',
        icc_profile=srgb_profile(),
    )
    data = output.getvalue()
    check = Image.open(io.BytesIO(data))
    assert dict(check.getexif().get_ifd(0x8825))[2] == LATITUDE  # the test input has GPS
    return data


def png_bytes(size: tuple[int, int] = (40, 30), mode: str = "RGBA", **params: Any) -> bytes:
    output = io.BytesIO()
    picture(size, mode).save(output, "PNG", **params)
    return output.getvalue()


def gif_bytes() -> bytes:
    output = io.BytesIO()
    picture().save(output, "GIF")
    return output.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A small real PNG whose header claims width x height pixels (CRC recomputed)."""
    data = bytearray(png_bytes((8, 8), "RGB"))
    # Signature (8), IHDR length (4), "IHDR" (4), then width and height.
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def no_metadata(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    assert not dict(image.getexif())
    assert "exif" not in image.info
    for key in ("icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "Raw profile type exif"):
        assert key not in image.info
    for marker in (b"Exif\x00", b"ICC_PROFILE", b"ns.adobe.com/xap", b"Main Street", b"GPS"):
        assert marker not in data


# --- desk and office helpers ---------------------------------------------------------------


@pytest.fixture
def open_desk(kiosk_client: FlaskClient) -> FlaskClient:
    tap_start(kiosk_client)
    return kiosk_client


def upload(
    client: FlaskClient,
    data: bytes,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    kind: str | None = "document",
    token: str | None = None,
) -> Any:
    form: dict[str, Any] = {
        "csrf_token": token if token is not None else csrf_token(client, "/desk/document"),
        "photo": (io.BytesIO(data), filename, content_type),
    }
    if kind is not None:
        form["photo_kind"] = kind
    return client.post("/desk/document/photos", data=form, content_type="multipart/form-data")


def photos(app: Flask) -> list[Photo]:
    with database(app).session_factory() as session:
        return list(session.scalars(select(Photo).order_by(Photo.id)))


def stored_files(app: Flask) -> list[Path]:
    folder = Path(app.config["PHOTO_DIR"])
    return sorted(folder.iterdir()) if folder.exists() else []


def sealed_content(app: Flask, photo: Photo) -> bytes:
    """The photo's column as stored: the sealed envelope."""
    with database(app).session_factory() as session:
        row = session.get(Photo, photo.id, options=[undefer(Photo.content)])
        assert row is not None and row.content is not None
        return row.content


def stored_image(app: Flask, photo: Photo) -> bytes:
    """The image the row holds, opened with the app's keys."""
    return open_bytes(
        app.extensions["kiosk_keyring"],
        sealed_content(app, photo),
        "photos",
        "content",
        photo.public_id,
    )


def set_content(app: Flask, photo: Photo, content: bytes | None) -> None:
    with writing(), database(app).session_factory() as session, session.begin():
        session.execute(update(Photo).where(Photo.id == photo.id).values(content=content))


def photo_events(app: Flask) -> list[dict[str, Any]]:
    with database(app).session_factory() as session:
        rows = session.scalars(
            select(EncounterEvent)
            .where(EncounterEvent.kind == "photo_added")
            .order_by(EncounterEvent.id)
        )
        return [json.loads(row.data) for row in rows]


def field_error(body: str, field: str) -> str:
    marker = f'id="{field}-error">'
    if marker not in body:
        return ""
    return html.unescape(body.split(marker)[1].split("</p>")[0])


def login(app: Flask, email: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    response = client.post(
        "/login",
        data={"csrf_token": csrf_token(client, "/login"), "email": email, "password": password},
    )
    assert response.status_code == 302, f"{email} could not sign in"
    complete_second_factor(app, client, email, response.headers["Location"])
    return client


def create_user(app: Flask, email: str, role: str, school: str | None = None) -> None:
    args = ["users", "create", "--email", email, "--name", f"Test {role}", "--role", role]
    if school:
        args += ["--school", school]
    result = app.test_cli_runner().invoke(
        args=args, env={"KIOSK_NEW_PASSWORD": "test-password-123"}
    )
    assert result.exit_code == 0, result.output


def audit_entries(app: Flask) -> list[AuditEntry]:
    with database(app).session_factory() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


@pytest.fixture
def stored(app: Flask, open_desk: FlaskClient) -> Photo:
    """One photo added at the Lincoln kiosk."""
    assert upload(open_desk, jpeg_with_gps()).status_code == 302
    (photo,) = photos(app)
    return photo


# --- the desk ------------------------------------------------------------------------------


def test_document_page_offers_camera_upload_and_says_not_to_photograph_a_badge(
    open_desk: FlaskClient,
) -> None:
    page = open_desk.get("/desk/document").get_data(as_text=True)
    form = page.split('<form method="post" action="/desk/document"')[1].split("</form>")[0]
    assert 'enctype="multipart/form-data"' in form  # one form: a photo keeps what is typed
    section = page.split('<section id="photos"')[1].split("</section>")[0]
    assert 'name="action" value="photo"' in section
    assert re.search(r'<input[^>]*accept="image/jpeg,image/png"[^>]*type="file"', section)
    assert 'capture="environment"' in section
    assert (
        "Photograph the document or a business card. Do not photograph a badge or ID card."
        in section
    )
    assert 'aria-describedby="photo-hint"' in section  # the line belongs to the control
    assert 'value="document"' in section and 'value="business_card"' in section
    assert "No photos added yet." in section
    assert " style=" not in section and "<script" not in section


def test_jpeg_is_stored_without_exif_gps_or_other_metadata(
    app: Flask, open_desk: FlaskClient
) -> None:
    original = jpeg_with_gps((64, 48), orientation=6)
    response = upload(open_desk, original)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/desk/document#photos")

    (photo,) = photos(app)
    data = stored_image(app, photo)
    assert data != original
    no_metadata(data)
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    # The orientation was applied to the pixels before the EXIF was dropped.
    assert (image.width, image.height) == (48, 64) == (photo.width, photo.height)
    assert photo.content_type == "image/jpeg"
    assert photo.kind == "document"
    assert photo.size_bytes == len(data)
    assert photo.sha256 == hashlib.sha256(data).hexdigest()
    assert photo.captured_at is not None
    assert photo.uploaded_by_kiosk_id is not None

    # Sealed in the database, not on this server's disk: no file, no image bytes in clear.
    sealed = sealed_content(app, photo)
    assert sealed.startswith(b"sealed:v1:k1:") and data not in sealed
    assert not sealed[13:].startswith(b"\xff\xd8\xff")
    assert photo.stored_name is None
    assert stored_files(app) == []

    assert photo_events(app) == [
        {"photo": photo.public_id, "kind": "document", "sha256": photo.sha256}
    ]


def test_desk_sees_that_a_photo_was_added_but_never_the_image(
    app: Flask, open_desk: FlaskClient
) -> None:
    response = upload(open_desk, jpeg_with_gps(), kind="business_card")
    page = open_desk.get(response.headers["Location"]).get_data(as_text=True)
    (photo,) = photos(app)
    assert photo.kind == "business_card"
    assert "Photo added." in page
    listing = page.split('id="photo-list"')[1].split("</ul>")[0]
    assert "Business card" in listing
    assert photo.sha256[:8] in listing
    assert photo.sha256 not in page  # only a short prefix at the desk
    assert "<img" not in page
    assert "/office/photos" not in page and photo.public_id not in page


def test_png_is_accepted_and_stays_png_without_text_or_exif(
    app: Flask, open_desk: FlaskClient
) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "GPS 40.44N 79.98W")
    original = png_bytes(
        (40, 30), "RGBA", pnginfo=info, exif=gps_exif(), icc_profile=srgb_profile()
    )
    assert upload(open_desk, original, "card.png", "image/png").status_code == 302
    (photo,) = photos(app)
    data = stored_image(app, photo)
    assert photo.content_type == "image/png"
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (40, 30)
    no_metadata(data)
    assert "Comment" not in image.info
    assert photo.sha256 == hashlib.sha256(data).hexdigest()


def test_photo_is_linked_to_the_document_once_there_is_one(
    app: Flask, open_desk: FlaskClient
) -> None:
    assert upload(open_desk, jpeg_with_gps()).status_code == 302
    token = csrf_token(open_desk, "/desk/document")
    response = open_desk.post(
        "/desk/document", data={"csrf_token": token, "issuer": "District Court"}
    )
    assert response.status_code == 302
    assert upload(open_desk, jpeg_with_gps()).status_code == 302
    first, second = photos(app)
    with database(app).session_factory() as session:
        document = session.scalars(select(Document)).one()
    assert first.document_id is None
    assert second.document_id == document.id


DISGUISED = {
    "gif": (gif_bytes, NOT_A_PHOTO),
    "html": (lambda: b"<!doctype html><html><script>alert(1)</script></html>", NOT_A_PHOTO),
    "text": (lambda: b"just some text\n" * 50, NOT_A_PHOTO),
    "random": (lambda: bytes((i * 37 + 11) % 256 for i in range(4096)), NOT_A_PHOTO),
    "jpeg magic then html": (lambda: b"\xff\xd8\xff\xe0<html></html>" * 20, NOT_A_PHOTO),
    "png magic then html": (lambda: b"\x89PNG\r\n\x1a\n<html></html>" * 20, NOT_A_PHOTO),
    "truncated jpeg": (lambda: jpeg_with_gps((200, 150))[:-400], UNREADABLE),
    "jpeg missing its end": (lambda: jpeg_with_gps((200, 150))[:-2], UNREADABLE),
    "empty": (lambda: b"", "This file is empty. Please take the photo again."),
}


@pytest.mark.parametrize("case", list(DISGUISED))
def test_anything_but_a_real_jpeg_or_png_is_refused_next_to_the_field(
    app: Flask, open_desk: FlaskClient, case: str
) -> None:
    make, message = DISGUISED[case]
    response = upload(open_desk, make(), "photo.jpg", "image/jpeg")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert field_error(body, "photo") == message
    assert 'aria-invalid="true"' in body.split('<section id="photos"')[1]
    assert photos(app) == []
    assert stored_files(app) == []
    assert photo_events(app) == []


def test_no_file_chosen_gets_a_message(app: Flask, open_desk: FlaskClient) -> None:
    token = csrf_token(open_desk, "/desk/document")
    response = open_desk.post(
        "/desk/document/photos",
        data={"csrf_token": token, "photo_kind": "document"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "photo") == "Choose or take a photo first."
    assert photos(app) == []


def test_unknown_kind_is_refused(app: Flask, open_desk: FlaskClient) -> None:
    response = upload(open_desk, jpeg_with_gps(), kind="badge")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "photo_kind")
    assert photos(app) == []


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (8_000, 7_000),  # over the kiosk's own limit, under Pillow's
        (10_000, 10_000),  # over Pillow's warning limit
        (100_000, 100_000),  # over Pillow's error limit
    ],
)
def test_decompression_bomb_header_is_refused_before_decoding(
    app: Flask, open_desk: FlaskClient, width: int, height: int
) -> None:
    assert width * height > MAX_PIXELS
    response = upload(open_desk, png_header(width, height), "photo.png", "image/png")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "photo") == TOO_MANY_PIXELS
    assert photos(app) == [] and stored_files(app) == []


def test_oversized_photo_is_refused(make_app: Any, district: dict[str, Any]) -> None:
    small = make_app(PHOTO_MAX_BYTES=20 * 1024)
    client, _ = enroll_client(small, district["school_names"][0])
    tap_start(client)
    data = jpeg_with_gps((400, 400))
    assert len(data) > 20 * 1024
    response = upload(client, data)
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "photo") == (
        "This photo is larger than 20 KB."
    )
    assert photos(small) == [] and stored_files(small) == []


def test_upload_over_the_request_limit_is_refused(app: Flask, open_desk: FlaskClient) -> None:
    # Encoded in memory: the test client would otherwise spool the body to a temporary
    # file that the refused request never reads or closes.
    boundary, body = encode_multipart(
        {
            "csrf_token": csrf_token(open_desk, "/desk/document"),
            "photo": FileStorage(
                io.BytesIO(b"\xff\xd8\xff" + b"\x00" * (13 * 1024 * 1024)),
                "photo.jpg",
                content_type="image/jpeg",
            ),
        }
    )
    assert len(body) > 13 * 1024 * 1024
    response = open_desk.post(
        "/desk/document/photos",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 413
    assert photos(app) == [] and stored_files(app) == []


@pytest.mark.parametrize(
    "filename",
    ["../../evil.jpg", "..\\..\\evil.jpg", "/etc/passwd", "C:\\x\\y.jpg", "évil\x00.jpg", "x"],
)
def test_client_file_name_never_names_the_stored_file(
    app: Flask, open_desk: FlaskClient, tmp_path: Path, filename: str
) -> None:
    response = upload(open_desk, jpeg_with_gps(), filename=filename, content_type="text/plain")
    assert response.status_code == 302
    (photo,) = photos(app)
    assert photo.stored_name is None and stored_files(app) == []
    for path in tmp_path.rglob("*"):
        assert "evil" not in path.name and path.name not in {"passwd", "y.jpg"}


def test_no_csrf_token_is_refused(app: Flask, open_desk: FlaskClient) -> None:
    response = upload(open_desk, jpeg_with_gps(), token="")
    assert response.status_code == 400
    assert photos(app) == [] and stored_files(app) == []


def test_a_record_keeps_a_bounded_number_of_photos(
    app: Flask, open_desk: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kiosk.photos.MAX_PHOTOS_PER_ENCOUNTER", 2)
    assert upload(open_desk, jpeg_with_gps()).status_code == 302
    assert upload(open_desk, jpeg_with_gps()).status_code == 302
    response = upload(open_desk, jpeg_with_gps())
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "photo") == (
        "This record already has 2 photos, the most it can keep."
    )
    assert len(photos(app)) == 2 and stored_files(app) == []


def test_photo_is_decoded_with_no_write_lock_held(
    app: Flask, open_desk: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An alert tap at another desk never waits for the write lock behind a photo: while the
    photo is decoded, another thread writes at once."""
    import threading

    from kiosk import photos as photo_module
    from kiosk.db import unit_of_work
    from kiosk.models import School

    wrote: list[bool] = []
    real = photo_module.reencode

    def other_desk_writes() -> None:
        with unit_of_work(database(app).session_factory) as session:
            school = session.scalars(select(School)).first()
            assert school is not None
            school.office_phone = school.office_phone
        wrote.append(True)

    def watched(data: bytes) -> Any:
        other = threading.Thread(target=other_desk_writes)
        other.start()
        other.join(timeout=5)
        wrote.append(not other.is_alive())
        return real(data)

    monkeypatch.setattr(photo_module, "reencode", watched)
    assert upload(open_desk, jpeg_with_gps()).status_code == 302
    assert wrote == [True, True]
    assert len(photos(app)) == 1


def test_no_upload_once_the_desk_has_closed(app: Flask, open_desk: FlaskClient) -> None:
    token = csrf_token(open_desk, "/desk/close")
    assert open_desk.post("/desk/close", data={"csrf_token": token}).status_code == 302
    response = upload(open_desk, jpeg_with_gps(), token=token)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/desk/")
    assert photos(app) == [] and stored_files(app) == []


# --- serving -------------------------------------------------------------------------------


def test_lincoln_designee_sees_the_photo_and_the_view_is_audited(app: Flask, stored: Photo) -> None:
    client = login(app, LINCOLN_DESIGNEE)
    before = len(audit_entries(app))
    response = client.get(f"/office/photos/{stored.public_id}")
    assert response.status_code == 200
    data = response.get_data()
    assert data == stored_image(app, stored)
    assert hashlib.sha256(data).hexdigest() == stored.sha256
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"] == (
        f'inline; filename="photo-{stored.public_id}.jpg"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"

    entries = audit_entries(app)
    assert len(entries) == before + 1
    with database(app).session_factory() as session:
        user = session.scalars(select(User).where(User.email == LINCOLN_DESIGNEE)).one()
        assert audit.verify(session, app.config["AUDIT_KEY"]).ok
    entry = entries[-1]
    assert (entry.actor, entry.action, entry.subject) == (
        f"user:{user.public_id}",
        "photo.view",
        f"photo:{stored.public_id}",
    )
    assert stored.sha256 not in entry.details


def test_png_is_served_as_png(app: Flask, open_desk: FlaskClient) -> None:
    assert upload(open_desk, png_bytes(), "card.png", "image/png").status_code == 302
    (photo,) = photos(app)
    response = login(app, LINCOLN_DESIGNEE).get(f"/office/photos/{photo.public_id}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Disposition"].endswith(f'photo-{photo.public_id}.png"')


@pytest.mark.parametrize(
    ("role", "school"),
    [
        ("reviewer", None),
        ("counsel", None),
        ("designee", "Lincoln Elementary School"),
    ],
)
def test_reviewers_and_counsel_see_photos_of_their_schools(
    app: Flask, stored: Photo, role: str, school: str | None
) -> None:
    create_user(app, f"{role}@district.test", role, school)
    client = login(app, f"{role}@district.test", "test-password-123")
    assert client.get(f"/office/photos/{stored.public_id}").status_code == 200


@pytest.mark.parametrize(
    ("email", "password", "setup", "status"),
    [
        # Staff of another school are not told the photo exists.
        (RIVERSIDE_DESIGNEE, PASSWORD, None, 404),
        (
            "rdesignee@district.test",
            "test-password-123",
            ("designee", "Riverside Middle School"),
            404,
        ),
        # Roles that read no record anywhere are refused before any lookup.
        (ADMIN, PASSWORD, None, 403),
        (
            "desk@district.test",
            "test-password-123",
            ("front_desk", "Lincoln Elementary School"),
            403,
        ),
    ],
)
def test_others_signed_in_are_refused_and_nothing_is_audited(
    app: Flask,
    stored: Photo,
    email: str,
    password: str,
    setup: tuple[str, str] | None,
    status: int,
) -> None:
    if setup:
        create_user(app, email, *setup)
    client = login(app, email, password)
    before = len(audit_entries(app))
    response = client.get(f"/office/photos/{stored.public_id}")
    assert response.status_code == status
    assert not response.content_type.startswith("image/")
    assert len(audit_entries(app)) == before


def test_unknown_photo_is_404(app: Flask, stored: Photo) -> None:
    client = login(app, LINCOLN_DESIGNEE)
    assert client.get("/office/photos/nothing-here").status_code == 404


def test_anonymous_is_sent_to_sign_in(app: Flask, stored: Photo) -> None:
    response = app.test_client().get(f"/office/photos/{stored.public_id}")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert not response.content_type.startswith("image/")


def test_the_kiosk_itself_gets_no_image(open_desk: FlaskClient, stored: Photo) -> None:
    response = open_desk.get(f"/office/photos/{stored.public_id}")
    assert response.status_code == 302  # a kiosk is nobody signed in
    assert "/login" in response.headers["Location"]
    assert not response.content_type.startswith("image/")


def test_a_changed_photo_is_not_served(app: Flask, stored: Photo) -> None:
    sealed = sealed_content(app, stored)
    set_content(app, stored, sealed[:-1] + bytes([sealed[-1] ^ 1]))
    client = login(app, LINCOLN_DESIGNEE)
    before = len(audit_entries(app))
    response = client.get(f"/office/photos/{stored.public_id}")
    assert response.status_code == 500
    assert not response.content_type.startswith("image/")
    assert len(audit_entries(app)) == before
    set_content(app, stored, None)
    assert client.get(f"/office/photos/{stored.public_id}").status_code == 404


def test_a_photo_copied_onto_another_row_does_not_open(
    app: Flask, open_desk: FlaskClient, stored: Photo
) -> None:
    assert upload(open_desk, png_bytes((20, 10), "RGB"), "b.png", "image/png").status_code == 302
    first, second = photos(app)
    set_content(app, second, sealed_content(app, first))
    client = login(app, LINCOLN_DESIGNEE)
    assert client.get(f"/office/photos/{second.public_id}").status_code == 500
    assert client.get(f"/office/photos/{first.public_id}").status_code == 200


def test_a_photo_kept_as_a_file_before_photos_moved_is_still_served(
    app: Flask, stored: Photo
) -> None:
    """Photos from before the move stay readable until the rotate job seals them."""
    data = stored_image(app, stored)
    folder = Path(app.config["PHOTO_DIR"])
    folder.mkdir(mode=0o700, parents=True)
    (folder / ("ab" * 16 + ".jpg")).write_bytes(data)
    with writing(), database(app).session_factory() as session, session.begin():
        session.execute(
            update(Photo)
            .where(Photo.id == stored.id)
            .values(content=None, stored_name="ab" * 16 + ".jpg")
        )
    client = login(app, LINCOLN_DESIGNEE)
    assert client.get(f"/office/photos/{stored.public_id}").get_data() == data


def test_encounter_page_shows_thumbnails_time_and_full_sha(app: Flask, stored: Photo) -> None:
    with database(app).session_factory() as session:
        encounter = session.scalars(select(Encounter)).one()
    client = login(app, LINCOLN_DESIGNEE)
    page = client.get(f"/office/encounters/{encounter.public_id}").get_data(as_text=True)
    section = page.split('<section id="photos"')[1].split("</section>")[0]
    assert f'src="/office/photos/{stored.public_id}"' in section
    assert re.search(r'alt="Photo of the document, captured \d\d:\d\d"', section)
    assert stored.sha256 in section
    assert " style=" not in section


def test_an_admin_gets_no_encounter_page_and_so_no_photo(app: Flask, stored: Photo) -> None:
    with database(app).session_factory() as session:
        encounter = session.scalars(select(Encounter)).one()
    page = login(app, ADMIN).get(f"/office/encounters/{encounter.public_id}")
    assert page.status_code == 403
    body = page.get_data(as_text=True)
    assert stored.public_id not in body and stored.sha256 not in body


# --- the re-encoder on its own -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_png_modes_survive_re_encoding(mode: str) -> None:
    encoded = reencode(png_bytes((16, 12), mode))
    image = Image.open(io.BytesIO(encoded.data))
    assert image.format == "PNG" and image.size == (16, 12)


def test_palette_png_keeps_its_transparency() -> None:
    image = picture((16, 12)).convert("P")
    output = io.BytesIO()
    image.save(output, "PNG", transparency=0)
    result = Image.open(io.BytesIO(reencode(output.getvalue()).data))
    assert result.info.get("transparency") == 0


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_jpeg_modes_survive_re_encoding(mode: str) -> None:
    output = io.BytesIO()
    picture((16, 12), mode).save(output, "JPEG")
    encoded = reencode(output.getvalue())
    assert Image.open(io.BytesIO(encoded.data)).format == "JPEG"


def test_multi_picture_jpeg_keeps_only_the_first_picture_as_jpeg() -> None:
    output = io.BytesIO()
    picture((32, 24)).save(output, "MPO", save_all=True, append_images=[picture((24, 32))])
    encoded = reencode(output.getvalue())
    image = Image.open(io.BytesIO(encoded.data))
    assert image.format == "JPEG" and image.size == (32, 24)
    assert encoded.content_type == "image/jpeg"
    assert getattr(image, "n_frames", 1) == 1


def test_the_re_encoder_refuses_other_formats() -> None:
    for fmt in ("BMP", "TIFF", "WEBP"):
        output = io.BytesIO()
        picture().save(output, fmt)
        with pytest.raises(PhotoError, match="not a JPEG or PNG"):
            reencode(output.getvalue())


def test_no_photo_folder_is_written(app: Flask, open_desk: FlaskClient) -> None:
    assert upload(open_desk, jpeg_with_gps()).status_code == 302
    assert not Path(app.config["PHOTO_DIR"]).exists()
