"""The front-desk encounter through the test client: tap, script, steps, close."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from kiosk.clock import now_utc
from kiosk.models import OutboxMessage, ScriptVersion, User
from kiosk.webdb import database
from tests.conftest import (
    csrf_token,
    deliver,
    encounters,
    enroll_client,
    events,
    start_fields,
    tap_start,
)


def test_browser_that_is_not_enrolled_sees_only_not_a_kiosk(app: Flask, district: Any) -> None:
    client = app.test_client()
    for path in ("/desk/", "/desk/agents", "/desk/document", "/desk/status.json"):
        response = client.get(path)
        assert response.status_code == 403
        assert "This device is not a kiosk" in response.get_data(as_text=True)
    assert client.post("/desk/start", data={}).status_code == 403


def test_enrollment_link_is_one_time_and_get_changes_nothing(app: Flask, district: Any) -> None:
    from kiosk.auth.devices import issue_enrollment
    from kiosk.db import writing
    from kiosk.models import School

    with writing(), database(app).session_factory() as session, session.begin():
        school = session.scalars(select(School)).first()
        _, token = issue_enrollment(session, school, now_utc(), 1)
    client = app.test_client()
    page = client.get(f"/enroll/{token}")
    assert page.status_code == 200
    assert "Lincoln Elementary School" in page.get_data(as_text=True)
    assert client.get("/desk/").status_code == 403  # opening the link enrolled nothing
    token_value = csrf_token(client, f"/enroll/{token}")
    response = client.post(f"/enroll/{token}", data={"csrf_token": token_value})
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert client.get("/desk/").status_code == 200
    other = app.test_client()
    assert other.get(f"/enroll/{token}").status_code == 404


def test_idle_screen_has_one_neutral_start_control(kiosk_client: FlaskClient) -> None:
    page = kiosk_client.get("/desk/").get_data(as_text=True)
    assert page.count('type="submit"') == 1
    assert "Notify district office" in page
    for word in ("ICE", "immigration", "Immigration", "warrant", "agent", "<audio"):
        assert word not in page
    assert re.search(r'<input checked[^>]*value="in_person"', page)


def test_one_tap_creates_encounter_alert_and_shows_opening_line(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    response = tap_start(kiosk_client)
    assert response.status_code == 302
    page = kiosk_client.get("/desk/").get_data(as_text=True)
    assert "Say this" in page
    assert 'id="say-line"' in page
    assert "Notifying the office" in page
    [encounter] = encounters(app)
    assert encounter.status == "open"
    assert encounter.channel == "in_person"
    assert encounter.script_version_id is not None
    with database(app).session_factory() as session:
        rows = session.scalars(select(OutboxMessage)).all()
        assert [row.kind for row in rows] == ["alert"]  # the one level-1 designee
        assert rows[0].recipient == "dana.reyes@demo-district.example"
    kinds = [e.kind for e in events(app, encounter.id)]
    assert kinds[:2] == ["started", "alert_enqueued"]
    assert all(
        e.script_version_id == encounter.script_version_id for e in events(app, encounter.id)
    )


def test_double_tap_returns_the_same_encounter(app: Flask, kiosk_client: FlaskClient) -> None:
    page = kiosk_client.get("/desk/").get_data(as_text=True)
    fields = {**start_fields(page), "channel": "in_person"}
    first = kiosk_client.post("/desk/start", data=fields)
    second = kiosk_client.post("/desk/start", data=fields)
    assert first.status_code == second.status_code == 302
    assert len(encounters(app)) == 1
    with database(app).session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_stale_idle_page_still_starts_on_first_tap(app: Flask, kiosk_client: FlaskClient) -> None:
    """A page left overnight: its start token does not expire."""
    page = kiosk_client.get("/desk/").get_data(as_text=True)
    fields = start_fields(page)
    from kiosk import clock

    clock.set_offset(26 * 3600)
    try:
        response = kiosk_client.post("/desk/start", data={**fields, "channel": "phone"})
    finally:
        clock.set_offset(0)
    assert response.status_code == 302
    [encounter] = encounters(app)
    assert encounter.channel == "phone"


def test_start_without_device_token_does_nothing(app: Flask, kiosk_client: FlaskClient) -> None:
    response = kiosk_client.post("/desk/start", data={"nonce": "x", "start_token": "forged"})
    assert response.status_code == 302
    assert encounters(app) == []


def test_alert_state_notified_then_undelivered(app: Flask, kiosk_client: FlaskClient) -> None:
    tap_start(kiosk_client)
    status = kiosk_client.get("/desk/status.json").get_json()
    assert status["open"] is True
    assert status["alert"]["state"] == "sending"
    deliver(app)
    status = kiosk_client.get("/desk/status.json").get_json()
    assert status["alert"]["state"] == "notified"
    assert status["alert"]["text"].startswith("Office notified at ")


def test_undelivered_alert_shows_numbers_to_call(make_app: Any, district: Any) -> None:
    app = make_app(UNDELIVERED_AFTER_SECONDS=0)
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    status = client.get("/desk/status.json").get_json()
    assert status["alert"]["state"] == "undelivered"
    assert "Not delivered yet: call the office at (555) 010-0201" in status["alert"]["text"]
    assert "(555) 010-0100" in status["alert"]["text"]


def test_kiosk_of_one_school_never_sees_another_schools_encounter(
    app: Flask, district: Any
) -> None:
    first, _ = enroll_client(app, "Lincoln Elementary School")
    second, _ = enroll_client(app, "Riverside Middle School")
    tap_start(first)
    page = second.get("/desk/").get_data(as_text=True)
    assert "Notify district office" in page
    assert second.get("/desk/status.json").get_json() == {"open": False}


def walk_all_steps(client: FlaskClient) -> None:
    token = csrf_token(client, "/desk/agents")
    response = client.post(
        "/desk/agents",
        data={
            "csrf_token": token,
            "name": "R. Alvarez",
            "badge_number": "4471",
            "agency_printed": "Homeland Security Investigations",
            "agency_pick": "hsi",
            "id_shown": "when_asked",
            "attire": "plain",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    token = csrf_token(client, "/desk/request")
    response = client.post(
        "/desk/request",
        data={
            "csrf_token": token,
            "request_kinds": ["student_info", "student_access"],
            "purpose": "Said it is a welfare check.",
            "consent_claimed": "yes",
            "place": "front_desk",
            "agents_present": "2",
            "person_name": "Maria Example",
            "relation": "student",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    token = csrf_token(client, "/desk/document")
    response = client.post(
        "/desk/document",
        data={
            "csrf_token": token,
            "shown": "yes",
            "court_named": "no",
            "judge_signed": "no",
            "dhs_form": "yes",
            "asks": "enter_or_arrest",
            "form": "I-205",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def test_walk_every_step_and_close(app: Flask, kiosk_client: FlaskClient) -> None:
    tap_start(kiosk_client)
    walk_all_steps(kiosk_client)
    page = kiosk_client.get("/desk/document").get_data(as_text=True)
    # A claimed consent outranks the document; the document's words fold below it.
    assert 'id="say-line" data-situation="consent_claimed"' in page
    assert "Also recorded: Document: Administrative warrant" in page
    token = csrf_token(kiosk_client, "/desk/exigency")
    assert (
        kiosk_client.post(
            "/desk/exigency", data={"csrf_token": token, "exigency": "no"}
        ).status_code
        == 302
    )
    token = csrf_token(kiosk_client, "/desk/outcome")
    response = kiosk_client.post("/desk/outcome", data={"csrf_token": token, "outcome": "left"})
    assert response.status_code == 302
    [encounter] = encounters(app)
    assert encounter.doc_first_impression == "administrative_warrant"
    assert encounter.request_kinds == "student_access,student_info"
    assert encounter.outcome == "left"
    assert encounter.exigency is False
    token = csrf_token(kiosk_client, "/desk/close")
    assert kiosk_client.post("/desk/close", data={"csrf_token": token}).status_code == 302
    idle = kiosk_client.get("/desk/").get_data(as_text=True)
    assert "Notify district office" in idle
    for path in ("/desk/agents", "/desk/request", "/desk/document", "/desk/outcome", "/desk/close"):
        response = kiosk_client.get(path)
        body = response.get_data(as_text=True)
        assert "R. Alvarez" not in body and "Maria Example" not in body
        assert response.status_code == 302
    assert kiosk_client.get("/desk/status.json").get_json() == {"open": False}
    kinds = [e.kind for e in events(app, encounter.id)]
    for kind in (
        "agent_added",
        "request_recorded",
        "person_named",
        "document_triaged",
        "followup_enqueued",
        "exigency_recorded",
        "outcome_recorded",
        "desk_closed",
    ):
        assert kind in kinds
    for event in events(app, encounter.id):
        assert "Maria Example" not in event.data


def test_script_changes_with_the_document(app: Flask, kiosk_client: FlaskClient) -> None:
    tap_start(kiosk_client)
    seen = {}
    for answers in (
        {"shown": "no"},
        {
            "shown": "yes",
            "court_named": "yes",
            "judge_signed": "yes",
            "immigration_court": "no",
            "dhs_form": "no",
            "grand_jury": "no",
            "asks": "enter_or_arrest",
        },
        {"shown": "unsure"},
    ):
        token = csrf_token(kiosk_client, "/desk/document")
        kiosk_client.post("/desk/document", data={"csrf_token": token, **answers})
        page = kiosk_client.get("/desk/document").get_data(as_text=True)
        situation = page.split('data-situation="')[1].split('"')[0]
        line = page.split('id="say-line"')[1].split("</p>")[0]
        seen[situation] = line
    assert "doc:none" in seen and "doc:judicial_warrant" in seen
    assert len(set(seen.values())) == len(seen)
    assert "comply" not in " ".join(seen.values()).lower()


def test_started_by_mistake_within_two_minutes(app: Flask, kiosk_client: FlaskClient) -> None:
    tap_start(kiosk_client)
    deliver(app)
    token = csrf_token(kiosk_client, "/desk/")
    response = kiosk_client.post("/desk/mistake", data={"csrf_token": token})
    assert response.status_code == 302
    [encounter] = encounters(app)
    assert encounter.status == "stood_down"
    assert encounter.stood_down_at is not None
    with database(app).session_factory() as session:
        kinds = [
            row.kind for row in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        ]
    assert kinds == ["alert", "standdown"]
    assert "stood_down" in [e.kind for e in events(app, encounter.id)]
    assert "Notify district office" in kiosk_client.get("/desk/").get_data(as_text=True)


def test_started_by_mistake_refused_after_two_minutes(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    tap_start(kiosk_client)
    token = csrf_token(kiosk_client, "/desk/")
    from kiosk import clock

    clock.set_offset(121)
    try:
        page = kiosk_client.get("/desk/").get_data(as_text=True)
        assert "Started by mistake" not in page
        kiosk_client.post("/desk/mistake", data={"csrf_token": token})
    finally:
        clock.set_offset(0)
    [encounter] = encounters(app)
    assert encounter.status == "open"


def test_staff_pin_identifies_and_five_wrong_lock_only_that_person(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    tap_start(kiosk_client)
    with database(app).session_factory() as session:
        pat = session.scalar(select(User).where(User.display_name == "Pat Lee"))
        sam = session.scalar(select(User).where(User.display_name == "Sam Ortiz"))
    token = csrf_token(kiosk_client, "/desk/staff")
    kiosk_client.post("/desk/staff", data={"csrf_token": token, "user": pat.public_id})
    for _attempt in range(5):
        token = csrf_token(kiosk_client, "/desk/staff/pin")
        response = kiosk_client.post("/desk/staff/pin", data={"csrf_token": token, "pin": "000000"})
        assert response.status_code == 422
    assert "locked" in response.get_data(as_text=True)
    token = csrf_token(kiosk_client, "/desk/staff/pin")
    response = kiosk_client.post("/desk/staff/pin", data={"csrf_token": token, "pin": "123456"})
    assert response.status_code == 422  # the right PIN while locked
    # The script, the alert and the other staff are unaffected.
    assert "Say this" in kiosk_client.get("/desk/").get_data(as_text=True)
    assert kiosk_client.get("/desk/status.json").get_json()["open"] is True
    token = csrf_token(kiosk_client, "/desk/staff")
    kiosk_client.post("/desk/staff", data={"csrf_token": token, "user": sam.public_id})
    token = csrf_token(kiosk_client, "/desk/staff/pin")
    response = kiosk_client.post("/desk/staff/pin", data={"csrf_token": token, "pin": "234567"})
    assert response.status_code == 302
    [encounter] = encounters(app)
    assert encounter.recorded_by_user_id == sam.id
    last = events(app, encounter.id)[-1]
    assert last.kind == "staff_identified"
    assert last.actor_user_id is None or last.actor_kiosk_id is not None


def test_every_event_records_time_actor_and_script_version(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    tap_start(kiosk_client)
    walk_all_steps(kiosk_client)
    [encounter] = encounters(app)
    rows = events(app, encounter.id)
    assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
    with database(app).session_factory() as session:
        version = session.get(ScriptVersion, encounter.script_version_id)
        assert version is not None and version.status == "draft"
    for event in rows:
        assert event.at is not None and event.at <= now_utc() + timedelta(seconds=1)
        assert event.actor_kind in {"kiosk", "system"}
        assert event.script_version_id == version.id
        json.loads(event.data)


def test_saved_choices_show_again_and_survive_a_second_save(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    tap_start(kiosk_client)
    token = csrf_token(kiosk_client, "/desk/request")
    kiosk_client.post(
        "/desk/request", data={"csrf_token": token, "request_kinds": ["student_access", "staff"]}
    )
    token = csrf_token(kiosk_client, "/desk/exigency")
    kiosk_client.post("/desk/exigency", data={"csrf_token": token, "exigency": "yes"})
    request_page = kiosk_client.get("/desk/request").get_data(as_text=True)
    assert re.search(r'<input checked[^>]*value="student_access"', request_page)
    assert re.search(r'<input checked[^>]*value="staff"', request_page)
    exigency_page = kiosk_client.get("/desk/exigency").get_data(as_text=True)
    assert re.search(r'<input checked[^>]*value="yes"', exigency_page)
    # Saving again what the page shows changes nothing.
    form = {
        "csrf_token": csrf_token(kiosk_client, "/desk/request"),
        "request_kinds": ["student_access", "staff"],
    }
    kiosk_client.post("/desk/request", data=form)
    [encounter] = encounters(app)
    assert encounter.request_kinds == "student_access,staff"
    assert encounter.exigency is True
