"""Each encounter's review page: the whole record, every view audited, and counsel's
privileged notes, which no other role, export or report shows."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from kiosk.clock import now_utc
from kiosk.db import writing
from kiosk.models import AuditEntry, Contact, Encounter, OutboxMessage, Photo, ScriptVersion
from kiosk.protocol import capture
from kiosk.protocol.events import Actor
from kiosk.webdb import database
from tests.conftest import csrf_token, deliver, tap_start, the_encounter
from tests.test_desk_flow import walk_all_steps
from tests.test_photos import jpeg_with_gps, upload
from tests.test_policy import create_user, form_token, login, user_of
from tests.test_review_log import reviewer
from tests.test_review_report import DANA, JORDAN

NOTE = "Ask the agency for the original of the warrant before Friday."


def page_url(public_id: str) -> str:
    return f"/review/encounters/{public_id}"


def ended_record(app: Flask, kiosk_client: FlaskClient) -> str:
    """An encounter recorded at the desk, with a photo, acknowledged and resolved by Dana,
    and something the desk sent after it ended."""
    assert tap_start(kiosk_client).status_code == 302
    walk_all_steps(kiosk_client)
    assert upload(kiosk_client, jpeg_with_gps()).status_code == 302
    deliver(app)
    public_id = the_encounter(app).public_id
    dana = login(app, DANA, "demo-password")
    token = form_token(app, dana)
    record = f"/office/encounters/{public_id}"
    assert dana.post(f"{record}/acknowledge", data={"csrf_token": token}).status_code == 302
    response = dana.post(
        f"{record}/resolve", data={"csrf_token": token, "outcome": "left", "notes": ""}
    )
    assert response.status_code == 302
    with writing(), database(app).session_factory() as session, session.begin():
        encounter = session.scalar(select(Encounter).where(Encounter.public_id == public_id))
        assert encounter is not None and encounter.resolved_at is not None
        later = max(now_utc(), encounter.resolved_at + timedelta(seconds=1))
        added = capture.add_late_addition(
            session, encounter, Actor.system(), later, "outcome", {"witnesses": "Ms. Okafor"}
        )
        assert added is not None
    return public_id


def test_the_page_shows_the_whole_record_and_who_was_told_when(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    public_id = ended_record(app, kiosk_client)
    client = reviewer(app)
    response = client.get(page_url(public_id))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    # The agents, the request and the people named, as recorded.
    for recorded in ("R. Alvarez", "Homeland Security Investigations", "welfare check"):
        assert recorded in body
    assert "Maria Example" in body
    # Who was told, when it was sent, and when and by whom it was acknowledged.
    encounter = the_encounter(app)
    with database(app).session_factory() as session:
        message = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.recipient == DANA)
            .order_by(OutboxMessage.id)
            .limit(1)
        ).one()
        contact = session.get(Contact, message.contact_id)
        version = session.get(ScriptVersion, encounter.script_version_id)
        assert contact is not None and version is not None
        contact_name, label = contact.name, version.label
    assert message.sent_at is not None and encounter.first_acknowledged_at is not None
    told = body[body.index('id="told"') : body.index("</table>", body.index('id="told"'))]
    row = next(r for r in told.split("<tr>") if contact_name in r)
    assert message.sent_at.isoformat() in row
    assert encounter.first_acknowledged_at.isoformat() in row
    assert "by Dana Reyes" in row
    # Every event, with the script version the desk showed.
    timeline = body[body.index('id="timeline"') : body.index("</ol>", body.index('id="timeline"'))]
    assert timeline.count("<li") == encounter.event_count
    assert f"script version {encounter.script_version_id}: {label}" in timeline
    # What came after the end is marked so, in the timeline and with the record.
    assert "Added after the record ended" in timeline
    assert "after the record ended" in body[body.index('id="record"') :]
    assert "Ms. Okafor" in body
    documents = body[body.index('id="documents"') : body.index('id="photos-slot"')]
    assert "Document 1" in documents
    assert "<dt>Desk's first impression</dt><dd>Administrative warrant</dd>" in documents
    # The photo, through the existing (audited) photo route.
    with database(app).session_factory() as session:
        photo_id = session.scalars(select(Photo.public_id)).one()
    assert f'href="/office/photos/{photo_id}"' in body


def test_each_view_is_audited_with_who_and_when(app: Flask, kiosk_client: FlaskClient) -> None:
    public_id = ended_record(app, kiosk_client)
    client = reviewer(app)
    before = now_utc()
    assert client.get(page_url(public_id)).status_code == 200
    assert client.get(page_url(public_id)).status_code == 200
    viewer = user_of(app, "reviewer@district.test")
    with database(app).session_factory() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "encounter.review")
        ).all()
    assert len(entries) == 2
    assert {e.actor for e in entries} == {f"user:{viewer.public_id}"}
    assert {e.subject for e in entries} == {f"encounter:{public_id}"}
    assert all(e.at >= before - timedelta(seconds=1) for e in entries)


def test_the_log_links_each_row_to_its_review_page(app: Flask, kiosk_client: FlaskClient) -> None:
    public_id = ended_record(app, kiosk_client)
    body = reviewer(app).get("/review/").get_data(as_text=True)
    assert f'href="/review/encounters/{public_id}"' in body


def test_another_schools_designee_is_not_told_the_page_exists(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    public_id = ended_record(app, kiosk_client)
    jordan = login(app, JORDAN, "demo-password")
    assert jordan.get(page_url(public_id)).status_code == 404
    assert jordan.get(page_url("no-such-record")).status_code == 404


def counsel_client(app: Flask) -> FlaskClient:
    create_user(app, "counsel@district.test", "counsel")
    return login(app, "counsel@district.test")


def test_counsel_keeps_a_note_that_only_counsel_sees(app: Flask, kiosk_client: FlaskClient) -> None:
    public_id = ended_record(app, kiosk_client)
    counsel = counsel_client(app)
    token = csrf_token(counsel, page_url(public_id))
    response = counsel.post(
        f"{page_url(public_id)}/notes", data={"csrf_token": token, "text": NOTE}
    )
    assert response.status_code == 302
    page = counsel.get(page_url(public_id)).get_data(as_text=True)
    assert NOTE in page
    assert "Privileged notes" in page
    assert "Added after the record ended" in page[page.index('id="privileged-notes"') :]

    reviewer_client = reviewer(app)
    dana = login(app, DANA, "demo-password")
    for reader in (reviewer_client, dana):
        body = reader.get(page_url(public_id)).get_data(as_text=True)
        assert NOTE not in body
        assert "privileged-notes" not in body
        assert (
            reader.post(
                f"{page_url(public_id)}/notes",
                data={"csrf_token": form_token(app, reader), "text": "x"},
            ).status_code
            == 403
        )
    # Not in the exports, the printable report, or counsel's own copies of them either.
    for path in ("/review/export.csv", "/review/export.json", f"{page_url(public_id)}/report"):
        response = counsel.get(path)
        assert response.status_code == 200, path
        assert NOTE not in response.get_data(as_text=True), path


def test_a_note_is_sealed_at_rest_and_its_words_stay_out_of_the_audit(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    public_id = ended_record(app, kiosk_client)
    counsel = counsel_client(app)
    token = csrf_token(counsel, page_url(public_id))
    assert (
        counsel.post(
            f"{page_url(public_id)}/notes", data={"csrf_token": token, "text": NOTE}
        ).status_code
        == 302
    )
    with database(app).session_factory() as session:
        stored = session.execute(text("SELECT text FROM privileged_notes")).scalars().all()
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "encounter.privileged_note")
        ).all()
    assert len(stored) == 1 and stored[0].startswith("sealed:v1:")
    assert "warrant" not in stored[0]
    assert len(entries) == 1
    assert entries[0].subject == f"encounter:{public_id}"
    assert "warrant" not in (entries[0].details or "")


def test_an_empty_note_comes_back_with_the_message_by_the_field(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    public_id = ended_record(app, kiosk_client)
    counsel = counsel_client(app)
    token = csrf_token(counsel, page_url(public_id))
    response = counsel.post(
        f"{page_url(public_id)}/notes", data={"csrf_token": token, "text": "   "}
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="text-error"' in body
    assert "Type the note first." in body
    too_long = "x" * 4001
    response = counsel.post(
        f"{page_url(public_id)}/notes", data={"csrf_token": token, "text": too_long}
    )
    assert response.status_code == 422
    assert too_long in response.get_data(as_text=True)
    with database(app).session_factory() as session:
        assert session.execute(text("SELECT count(*) FROM privileged_notes")).scalar() == 0
