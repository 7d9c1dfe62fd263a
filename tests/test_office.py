"""The district office: acknowledgement links, the dashboard, messages to the desk, decisions."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import select

from kiosk import clock
from kiosk.models import Acknowledgement, AuditEntry, Contact, Encounter, EncounterEvent
from kiosk.notify.links import ack_token
from kiosk.webdb import database
from tests.conftest import (
    csrf_token,
    deliver,
    enroll_client,
    tamper,
    tap_start,
    the_encounter,
)
from tests.test_policy import complete_second_factor

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
    complete_second_factor(app, client, email, response.headers["Location"])
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

    encounter = the_encounter(app)
    dana = login(app, DANA)
    for _ in range(3):
        assert dana.get(f"/office/encounters/{encounter.public_id}").status_code == 200
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "Record intact" in result.output
    with database(app).session_factory() as session:
        views = list(
            session.scalars(
                select(AuditEntry.seq)
                .where(AuditEntry.action == "encounter.view")
                .order_by(AuditEntry.seq)
            )
        )
    # Her three views of the record are each in the chain.
    assert len(views) == 3
    tamper(app, update(AuditEntry).where(AuditEntry.seq == views[0]).values(actor="user:someone"))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0 and f"broken at entry {views[0]}" in result.output


# --- the encounter page on a phone: the moment first, then only the actions it calls for ----


FORM_TAG = re.compile(r"<form\b[^>]*>")


def offered(page: str) -> set[str]:
    """The actions of the forms the page shows (a form marked hidden is not offered)."""
    found = set()
    for tag in FORM_TAG.findall(page):
        action = re.search(r'action="([^"]+)"', tag)
        if action and not re.search(r"\shidden(?:[\s>=]|$)", tag):
            found.add(action.group(1).rsplit("/", 1)[-1])
    return found


def section(page: str, section_id: str) -> str:
    """The HTML of one <section> (sections on the encounter page are not nested)."""
    start = page.index(f'<section id="{section_id}"')
    return page[start : page.index("</section>", start)]


def desk_post(client: FlaskClient, path: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, path), **(data or {})})


def encounter_page(client: FlaskClient, public_id: str) -> str:
    response = client.get(f"/office/encounters/{public_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def events_of(app: Flask) -> list[str]:
    with database(app).session_factory() as session:
        return list(session.scalars(select(EncounterEvent.kind).order_by(EncounterEvent.id)))


def test_the_moment_comes_first_then_the_actions_then_the_timeline(
    app: Flask, started: FlaskClient
) -> None:
    from kiosk.models import ScriptVersion
    from kiosk.protocol.encounters import facts_for
    from kiosk.protocol.scriptstore import pack_for

    desk_post(started, "/desk/request", {"request_kinds": ["adult"], "consent_claimed": "yes"})
    encounter = the_encounter(app)
    dana = login(app, DANA)
    page = encounter_page(dana, encounter.public_id)
    assert page.index('id="moment"') < page.index('id="actions"') < page.index('id="timeline"')
    assert page.index('id="actions"') < page.index('id="follow-up"') < page.index('id="timeline"')

    # The desk's "Now" panel as the desk's start screen shows it, worked out the same way.
    with database(app).session_factory() as session:
        record = session.get(Encounter, encounter.id)
        assert record is not None
        version = session.get(ScriptVersion, record.script_version_id)
        assert version is not None
        panel = pack_for(version).panel("start", facts_for(record))
    assert panel.earlier, "the test needs a second situation to be recorded"
    # ... and as the desk's screen shows it now.
    desk = started.get("/desk/").get_data(as_text=True)
    desk_say = re.search(r'id="say-line" data-situation="[^"]*">([^<]*)</p>', desk)
    desk_label = re.search(r'id="now-label">([^<]*)</span>', desk)
    assert desk_say and desk_label, desk
    assert (desk_say.group(1), desk_label.group(1)) == (
        escape(panel.top.say),
        escape(panel.top.label),
    )
    moment = section(page, "moment")
    assert f'id="moment-say">{escape(panel.top.say)}</p>' in moment
    assert f'id="moment-situation">{escape(panel.top.label)}</dd>' in moment
    assert escape("; ".join(b.label for b in panel.earlier)) in moment
    assert 'data-field="document">No first impression recorded yet</dd>' in moment
    assert '<span data-field="acknowledged">Not yet</span>' in moment
    assert "alerted up to level 1" in moment
    # The desk's last activity: its latest event, in the school's local time.
    with database(app).session_factory() as session:
        last = session.scalars(
            select(EncounterEvent)
            .where(EncounterEvent.actor_kind == "kiosk")
            .order_by(EncounterEvent.seq.desc())
        ).first()
        assert last is not None and last.kind == "request_recorded"
        school = session.get(Encounter, encounter.id).school  # type: ignore[union-attr]
        at = last.at.astimezone(ZoneInfo(school.timezone)).strftime("%H:%M:%S")
    assert f'<time datetime="{last.at.isoformat()}">{at}</time> Request recorded' in moment

    # Acknowledged: who and when, instead of the level reached.
    dana.post(
        f"/office/encounters/{encounter.public_id}/acknowledge",
        data={"csrf_token": csrf_token(dana, f"/office/encounters/{encounter.public_id}")},
    )
    moment = section(encounter_page(dana, encounter.public_id), "moment")
    assert re.search(r'data-field="acknowledged">Dana Reyes at \d\d:\d\d:\d\d</span>', moment)
    assert "alerted up to level" not in moment


def test_acknowledge_is_offered_only_until_someone_has_acknowledged(
    app: Flask, started: FlaskClient
) -> None:
    encounter = the_encounter(app)
    path = f"/office/encounters/{encounter.public_id}"
    morgan = login(app, MORGAN)
    actions = {"acknowledge", "message", "on_scene"}
    assert actions <= offered(section(encounter_page(morgan, encounter.public_id), "actions"))
    # Dana acknowledges from her emailed link: the button goes from Morgan's page too.
    browser = app.test_client()
    link = ack_link_for(app, DANA)
    assert browser.post(link, data={"csrf_token": csrf_token(browser, link)}).status_code == 200
    page = encounter_page(morgan, encounter.public_id)
    assert "acknowledge" not in offered(page)
    assert 'id="acknowledge-button"' not in page
    assert {"message", "on_scene"} <= offered(section(page, "actions"))
    # A page loaded before that still has the button: it records Morgan's acknowledgement too.
    morgan.post(f"{path}/acknowledge", data={"csrf_token": csrf_token(morgan, path)})
    assert len(acks(app)) == 2
    assert "acknowledge" not in offered(encounter_page(morgan, encounter.public_id))


@pytest.mark.parametrize("how", ["first impression", "photo"])
def test_confirm_document_is_offered_once_a_first_impression_or_a_photo_exists(
    app: Flask, started: FlaskClient, how: str
) -> None:
    from tests.test_photos import jpeg_with_gps, upload

    encounter = the_encounter(app)
    dana = login(app, DANA)
    page = encounter_page(dana, encounter.public_id)
    assert "document" not in offered(page)
    assert 'id="moment-photo" data-photo="" hidden' in page
    if how == "photo":
        assert upload(started, jpeg_with_gps()).status_code == 302
    else:
        desk_post(started, "/desk/document", {"shown": "unsure"})
    page = encounter_page(dana, encounter.public_id)
    assert "document" in offered(section(page, "actions"))
    moment = section(page, "moment")
    if how == "photo":
        # The first photo of the document, large, from the audited photo route.
        photo = re.search(r'<img src="(/office/photos/[^"]+)" alt="Photo of the document', moment)
        assert photo, moment
        assert dana.get(photo.group(1)).status_code == 200
        assert "No first impression recorded yet" in moment
    else:
        assert "Desk&#39;s first impression: Not sure yet, not confirmed yet" in moment


def test_care_form_records_how_the_childs_care_was_arranged(
    app: Flask, started: FlaskClient
) -> None:
    encounter = the_encounter(app)
    path = f"/office/encounters/{encounter.public_id}"
    dana = login(app, DANA)
    assert "care" not in offered(encounter_page(dana, encounter.public_id))
    desk_post(started, "/desk/request", {"request_kinds": ["adult"], "child_with": "Pat Lee"})
    page = encounter_page(dana, encounter.public_id)
    assert "care" in offered(section(page, "follow-up"))
    record = page[page.index('<section id="record"') :]
    assert 'data-field="child-with">Pat Lee</dd>' in record
    token = csrf_token(dana, path)

    blank = dana.post(f"{path}/care", data={"csrf_token": token, "care": "   "})
    assert blank.status_code == 422
    body = blank.get_data(as_text=True)
    care_field = body[body.index('<label for="care"') : body.index('id="care-error"') + 100]
    assert 'id="care-error">Say how the child&#39;s care was arranged.</p>' in care_field
    assert 'aria-invalid="true"' in care_field
    assert the_encounter(app).care_arranged is None
    assert "care_arranged" not in events_of(app)

    text = "Aunt, Sam Example, collects the child at 15:00; Pat Lee stays until then."
    done = dana.post(f"{path}/care", data={"csrf_token": token, "care": text})
    assert done.status_code == 302
    encounter = the_encounter(app)
    assert encounter.care_arranged == text and encounter.care_arranged_at is not None
    with database(app).session_factory() as session:
        event = session.scalars(
            select(EncounterEvent).where(EncounterEvent.kind == "care_arranged")
        ).one()
        assert "Sam Example" not in event.data  # names never enter events
    page = dana.get(path).get_data(as_text=True)
    assert "How the child&#39;s care was arranged is recorded." in page
    assert escape(text) in page[page.index('<section id="record"') :]
    assert "The child&#39;s care arrangements recorded" in section(page, "timeline-section")


def stand_down(desk: FlaskClient) -> None:
    """The desk's "Started by mistake": nobody identified, so no PIN."""
    response = desk.post("/desk/mistake", data={"csrf_token": csrf_token(desk, "/desk/")})
    assert response.status_code == 302, response.get_data(as_text=True)


def listed(client: FlaskClient) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in client.get("/office/encounters.json").get_json()["encounters"]}


def test_a_stand_down_stays_on_the_list_marked_until_a_designee_closes_it(
    app: Flask, started: FlaskClient
) -> None:
    encounter = the_encounter(app)
    path = f"/office/encounters/{encounter.public_id}"
    dana = login(app, DANA)
    stand_down(started)
    assert the_encounter(app).status == "stood_down"

    row = listed(dana)[encounter.public_id]
    assert row["status"] == "stood down" and row["stood_down"] is True
    home = dana.get("/office/").get_data(as_text=True)
    tr = home[home.index(f'<tr data-id="{encounter.public_id}"') :]
    tr = tr[: tr.index("</tr>")]
    assert 'class="stood-down"' in tr and "Stood down</strong>" in tr

    page = encounter_page(dana, encounter.public_id)
    assert offered(section(page, "actions")) == {"close", "reopen"}
    assert "Close: it was a mistake" in page and "Reopen: resume escalation" in page
    assert "Stood down at the desk at" in section(page, "moment")

    response = dana.post(f"{path}/close", data={"csrf_token": csrf_token(dana, path)})
    assert response.status_code == 302
    encounter = the_encounter(app)
    assert encounter.status == "resolved" and encounter.resolved_at is not None
    assert encounter.public_id not in listed(dana)
    page = dana.get(path).get_data(as_text=True)
    assert "Closed as a mistake." in page
    assert "Closed: it was a mistake" in section(page, "timeline-section")
    assert "close" not in offered(page) and "reopen" not in offered(page)


@pytest.mark.parametrize("acknowledged", [False, True])
def test_reopening_a_stand_down_resumes_where_it_stood(
    app: Flask, started: FlaskClient, acknowledged: bool
) -> None:
    encounter = the_encounter(app)
    path = f"/office/encounters/{encounter.public_id}"
    dana = login(app, DANA)
    if acknowledged:
        dana.post(f"{path}/acknowledge", data={"csrf_token": csrf_token(dana, path)})
    stand_down(started)
    encounter = the_encounter(app)
    assert encounter.status == "stood_down"
    response = dana.post(f"{path}/reopen", data={"csrf_token": csrf_token(dana, path)})
    assert response.status_code == 302
    encounter = the_encounter(app)
    if acknowledged:
        assert encounter.status == "acknowledged"
        assert encounter.next_escalation_at is None
    else:
        assert encounter.status == "open"
        assert encounter.next_escalation_at is not None
    assert "reopened" in events_of(app)
    assert listed(dana)[encounter.public_id]["stood_down"] is False
    page = dana.get(path).get_data(as_text=True)
    assert "Reopened after the stand-down" in section(page, "timeline-section")
    assert "message" in offered(section(page, "actions"))
    assert ("acknowledge" in offered(page)) is not acknowledged


@pytest.mark.parametrize("action", ["close", "reopen"])
def test_close_and_reopen_are_refused_unless_stood_down(
    app: Flask, started: FlaskClient, action: str
) -> None:
    encounter = the_encounter(app)
    path = f"/office/encounters/{encounter.public_id}"
    dana = login(app, DANA)
    assert {"close", "reopen"}.isdisjoint(offered(encounter_page(dana, encounter.public_id)))
    before = events_of(app)
    token = csrf_token(dana, path)
    response = dana.post(f"{path}/{action}", data={"csrf_token": token})
    assert response.status_code == 302
    page = dana.get(response.headers["Location"]).get_data(as_text=True)
    assert "Only an alert stood down at the desk can be" in page
    assert 'class="flash flash-error"' in page
    encounter = the_encounter(app)
    assert encounter.status == "open" and encounter.resolved_at is None
    assert events_of(app) == before
    assert encounter.public_id in listed(dana)
    # Without a CSRF token nothing happens either, stood down or not.
    stand_down(started)
    response = dana.post(f"{path}/{action}", data={})
    assert response.status_code in (302, 400)
    assert the_encounter(app).status == "stood_down"


def test_office_one_line_fields_refuse_direction_and_zero_width_characters(
    app: Flask, started: FlaskClient
) -> None:
    encounter = the_encounter(app)
    dana = login(app, DANA)
    page = f"/office/encounters/{encounter.public_id}"
    token = csrf_token(dana, page)
    response = dana.post(f"{page}/message", data={"csrf_token": token, "text": "Wait\u202eplease"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="text-error">This contains a hidden character that reverses' in body
    assert "Wait\u202eplease" in body
    response = dana.post(
        f"{page}/guardian",
        data={"csrf_token": token, "notice": "notified", "by": "Dana\u200bReyes"},
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="by-error">This contains an invisible character' in body
    assert 'value="Dana\u200bReyes"' in body
    assert the_encounter(app).guardian_notice is None
