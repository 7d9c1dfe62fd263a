"""The district office: acknowledgement links, the dashboard, messages to the desk, decisions."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk import clock
from kiosk.models import Acknowledgement, AuditEntry, Contact, Encounter, EncounterEvent
from kiosk.notify.links import ack_token
from kiosk.webdb import database
from tests.conftest import csrf_token, deliver, enroll_client, tap_start, the_encounter

DANA = "dana.reyes@demo-district.example"  # designee, Lincoln Elementary (level 1)
MORGAN = "morgan.blake@demo-district.example"  # backup, Lincoln Elementary (level 2)
JORDAN = "jordan.kim@demo-district.example"  # designee, Riverside Middle


def login(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"csrf_token": token, "email": email, "password": "demo-password"}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def acks(app: Flask) -> list[Acknowledgement]:
    with database(app).session_factory() as session:
        return list(session.scalars(select(Acknowledgement)))


def ack_link_for(app: Flask, email: str) -> str:
    """The acknowledgement link as it stands in the delivered email body."""
    from kiosk.models import OutboxMessage

    with database(app).session_factory() as session:
        row = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == email)).first()
        assert row is not None
        match = re.search(r"http://kiosk\.test(/ack/\S+)", row.body)
        assert match, row.body
        return match.group(1)


@pytest.fixture
def started(app: Flask, kiosk_client: FlaskClient) -> FlaskClient:
    tap_start(kiosk_client)
    deliver(app)
    return kiosk_client


def test_ack_link_get_changes_nothing_post_acknowledges_and_desk_sees_it(
    app: Flask, started: FlaskClient
) -> None:
    path = ack_link_for(app, DANA)
    browser = app.test_client()  # a phone's browser: not signed in
    page = browser.get(path)
    assert page.status_code == 200
    assert "Acknowledge the alert from Lincoln Elementary School" in page.get_data(as_text=True)
    assert acks(app) == []  # opening the link (a mail scanner does) acknowledges nothing
    token = csrf_token(browser, path)
    done = browser.post(path, data={"csrf_token": token})
    assert done.status_code == 200
    assert "Acknowledged at" in done.get_data(as_text=True)
    [ack] = acks(app)
    assert ack.channel == "email" and ack.user_id is None
    encounter = the_encounter(app)
    assert encounter.status == "acknowledged"
    assert encounter.first_acknowledged_at is not None
    assert encounter.next_escalation_at is None
    assert encounter.acknowledged_late is False
    status = started.get("/desk/status.json").get_json()
    assert status["ack"]["text"].startswith("Acknowledged by Dana Reyes at ")
    assert "Acknowledged by Dana Reyes" in started.get("/desk/").get_data(as_text=True)


def test_ack_link_reused_forged_expired_or_for_another_encounter(
    app: Flask, started: FlaskClient, district: Any
) -> None:
    path = ack_link_for(app, DANA)
    browser = app.test_client()
    browser.post(path, data={"csrf_token": csrf_token(browser, path)})
    assert len(acks(app)) == 1
    # Reused: nothing new.
    again = browser.post(path, data={"csrf_token": csrf_token(browser, path)})
    assert again.status_code == 409
    assert "Already acknowledged" in again.get_data(as_text=True)
    assert len(acks(app)) == 1
    # Forged: a changed token.
    forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
    response = browser.get(forged)
    assert response.status_code == 400
    assert "not valid" in response.get_data(as_text=True)
    # Signed with another key.
    encounter = the_encounter(app)
    with database(app).session_factory() as session:
        morgan = session.scalar(select(Contact).where(Contact.address == MORGAN))
        jordan = session.scalar(select(Contact).where(Contact.address == JORDAN))
    other_key = "/ack/" + ack_token("not-the-key", encounter.public_id, morgan.id)
    assert browser.get(other_key).status_code == 400
    # For a contact never alerted about this encounter (another school's designee).
    wrong = "/ack/" + ack_token(app.config["SECRET_KEY"], encounter.public_id, jordan.id)
    response = browser.post(wrong, data={"csrf_token": csrf_token(browser, path)})
    assert response.status_code == 400
    # For an encounter that does not exist.
    nowhere = "/ack/" + ack_token(app.config["SECRET_KEY"], "no-such-encounter", morgan.id)
    assert browser.get(nowhere).status_code == 400
    # Expired.
    clock.set_offset(25 * 3600)
    try:
        response = browser.get(path)
    finally:
        clock.set_offset(0)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert len(acks(app)) == 1


def test_dashboard_lists_only_the_designees_schools_and_updates(app: Flask, district: Any) -> None:
    lincoln, _ = enroll_client(app, "Lincoln Elementary School")
    riverside, _ = enroll_client(app, "Riverside Middle School")
    dana = login(app, DANA)
    first = dana.get("/office/encounters.json").get_json()
    assert first["encounters"] == []
    tap_start(lincoln)
    tap_start(riverside)
    data = dana.get(f"/office/encounters.json?since={first['cursor']}").get_json()
    assert data["changed"] is True
    assert [e["school"] for e in data["encounters"]] == ["Lincoln Elementary School"]
    row = data["encounters"][0]
    assert row["acknowledged"] is None and row["level"] == 1
    same = dana.get(
        "/office/encounters.json", query_string={"since": data["cursor"], "minute": data["minute"]}
    ).get_json()
    assert same["changed"] is False
    page = dana.get("/office/").get_data(as_text=True)
    assert "Lincoln Elementary School" in page and "Riverside Middle School" not in page
    # Another school's record is not found, rather than forbidden.
    with database(app).session_factory() as session:
        other = session.scalars(
            select(Encounter).where(Encounter.school_id == district["school_ids"][1])
        ).one()
    assert dana.get(f"/office/encounters/{other.public_id}").status_code == 404


def test_dashboard_ack_message_document_and_resolve(app: Flask, started: FlaskClient) -> None:
    encounter = the_encounter(app)
    dana = login(app, DANA)
    page = f"/office/encounters/{encounter.public_id}"
    assert dana.get(page).status_code == 200
    token = csrf_token(dana, page)
    assert dana.post(f"{page}/acknowledge", data={"csrf_token": token}).status_code == 302
    [ack] = acks(app)
    assert ack.channel == "dashboard" and ack.user_id is not None

    dana.post(f"{page}/message", data={"csrf_token": token, "preset": "on_my_way"})
    status = started.get("/desk/status.json").get_json()
    assert status["messages"]["unread"] == 1
    home = started.get("/desk/").get_data(as_text=True)
    assert "A message from the district office has arrived." in home
    assert "I am on my way" not in home  # revealed only on a tap
    shown = started.post("/desk/messages", data={"csrf_token": csrf_token(started, "/desk/")})
    assert "I am on my way. Please ask them to wait in the lobby." in shown.get_data(as_text=True)
    assert started.get("/desk/status.json").get_json()["messages"]["unread"] == 0

    # The desk thought "not sure"; the office confirms an administrative warrant.
    started.post(
        "/desk/document",
        data={"csrf_token": csrf_token(started, "/desk/document"), "shown": "unsure"},
    )
    dana.post(f"{page}/document", data={"csrf_token": token, "doc_type": "administrative_warrant"})
    encounter = the_encounter(app)
    assert encounter.doc_first_impression == "unsure"
    assert encounter.doc_confirmed_type == "administrative_warrant"
    desk = started.get("/desk/document").get_data(as_text=True)
    assert "Confirmed by the district office: Administrative warrant" in desk
    assert 'data-situation="doc:administrative_warrant"' in desk
    live = started.get("/desk/status.json?step=document").get_json()
    assert live["panel"]["situation"] == "doc:administrative_warrant"

    for what in ("on_scene", "counsel"):
        dana.post(f"{page}/mark/{what}", data={"csrf_token": token})
    dana.post(f"{page}/consent", data={"csrf_token": token, "result": "denied"})
    response = dana.post(
        f"{page}/guardian",
        data={"csrf_token": token, "notice": "not_notified", "by": "Dana Reyes"},
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="reason-error">Say why the parent or guardian was not notified.' in body
    assert 'value="Dana Reyes"' in body  # what was typed comes back
    too_long = "Please wait. " * 30
    response = dana.post(f"{page}/message", data={"csrf_token": token, "text": too_long})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="text-error">Keep this under 300 characters.' in body
    assert too_long.strip() in body
    dana.post(
        f"{page}/guardian",
        data={
            "csrf_token": token,
            "notice": "notified",
            "notified_at": "2026-03-02T10:30",
            "by": "Dana Reyes",
        },
    )
    dana.post(
        f"{page}/resolve",
        data={"csrf_token": token, "outcome": "left", "notes": "Agents left at 10:40."},
    )
    encounter = the_encounter(app)
    assert encounter.status == "resolved"
    assert encounter.designee_on_scene_at and encounter.counsel_contacted_at
    assert encounter.consent_check == "denied"
    assert encounter.guardian_notice == "notified" and encounter.guardian_notice_by == "Dana Reyes"
    # The kiosk returns to idle once the office resolves the encounter.
    assert "Notify district office" in started.get("/desk/").get_data(as_text=True)
    with database(app).session_factory() as session:
        kinds = [
            e.kind for e in session.scalars(select(EncounterEvent).order_by(EncounterEvent.id))
        ]
        audits = session.scalars(select(AuditEntry)).all()
    for kind in (
        "acknowledged",
        "desk_message_sent",
        "desk_message_shown",
        "document_confirmed",
        "designee_on_scene",
        "counsel_contacted",
        "consent_checked",
        "guardian_notice",
        "resolved",
    ):
        assert kind in kinds
    assert any(a.action == "encounter.view" for a in audits)


def test_live_events_since_cursor(app: Flask, started: FlaskClient) -> None:
    encounter = the_encounter(app)
    dana = login(app, DANA)
    base = f"/office/encounters/{encounter.public_id}/events.json"
    first = dana.get(f"{base}?since=0").get_json()
    assert [e["text"] for e in first["events"]][:2] == [
        "Protocol started at the desk",
        "Alert queued for level 1",
    ]
    none = dana.get(f"{base}?since={first['seq']}").get_json()
    assert none["events"] == []
    started.post(
        "/desk/agents",
        data={"csrf_token": csrf_token(started, "/desk/agents"), "name": "R. Alvarez"},
    )
    more = dana.get(f"{base}?since={first['seq']}").get_json()
    assert [e["text"] for e in more["events"]] == ["Agent added"]
    fragment = dana.get(f"/office/encounters/{encounter.public_id}/record")
    assert "R. Alvarez" in fragment.get_data(as_text=True)


def test_office_pages_need_sign_in_and_a_role(app: Flask, started: FlaskClient) -> None:
    encounter = the_encounter(app)
    anonymous = app.test_client()
    for path in (
        "/office/",
        f"/office/encounters/{encounter.public_id}",
        "/office/encounters.json",
    ):
        response = anonymous.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    # The kiosk's device cookie is not a sign-in.
    response = started.get(f"/office/encounters/{encounter.public_id}")
    assert response.status_code == 302
    wrong = app.test_client()
    token = csrf_token(wrong, "/login")
    response = wrong.post("/login", data={"csrf_token": token, "email": DANA, "password": "x"})
    assert "do not match" in response.get_data(as_text=True)


def test_acknowledged_late_is_recorded(app: Flask, started: FlaskClient) -> None:
    path = ack_link_for(app, DANA)
    browser = app.test_client()
    token = csrf_token(browser, path)
    clock.set_offset(timedelta(minutes=4).total_seconds())
    try:
        browser.post(path, data={"csrf_token": token})
    finally:
        clock.set_offset(0)
    assert the_encounter(app).acknowledged_late is True


def test_audit_chain_verifies_and_detects_tampering(app: Flask, started: FlaskClient) -> None:
    from sqlalchemy import update

    from kiosk.db import writing

    encounter = the_encounter(app)
    dana = login(app, DANA)
    for _ in range(3):
        assert dana.get(f"/office/encounters/{encounter.public_id}").status_code == 200
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "3 entries" in result.output
    with writing(), database(app).session_factory() as session, session.begin():
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="user:someone"))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0 and "broken at entry 2" in result.output
