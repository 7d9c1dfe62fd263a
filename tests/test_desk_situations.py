"""The desk under stress: one-tap fast paths, the "Now" panel on every step, one form per step
(nothing typed is lost), corrections after the tap, off-site routing, the cover and the
stand-down. Through the Flask test client; the same paths run in Chromium in tests/browser."""

from __future__ import annotations

import html
import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from kiosk import clock
from kiosk.models import Agent, Document, Encounter, EncounterEvent, OutboxMessage, Photo
from kiosk.notify.messages import STAND_DOWN_TEXT
from kiosk.protocol.documents import (
    DocType,
    triage,
)
from kiosk.protocol.picks import PICKS
from kiosk.protocol.scripts import STEPS
from kiosk.webdb import database
from tests.conftest import (
    SmtpSink,
    csrf_token,
    deliver,
    enroll_client,
    outbox_rows,
    smtp_settings,
    start_fields,
    tap_start,
    the_encounter,
)
from tests.test_cli import run
from tests.test_office import login

STEP_PATHS = {
    "start": "/desk/",
    "staff": "/desk/staff",
    "agents": "/desk/agents",
    "request": "/desk/request",
    "document": "/desk/document",
    "exigency": "/desk/exigency",
    "outcome": "/desk/outcome",
    "close": "/desk/close",
}
SAY = re.compile(r'id="say-line" data-situation="([^"]+)">([^<]*)<')


@pytest.fixture
def desk(kiosk_client: FlaskClient) -> FlaskClient:
    tap_start(kiosk_client)
    return kiosk_client


def situation_on(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = SAY.search(page)
    assert match, f"no say line on {path}"
    return match.group(1)


def tap(client: FlaskClient, what: str) -> Any:
    return client.post(f"/desk/now/{what}", data={"csrf_token": csrf_token(client, "/desk/")})


def post(client: FlaskClient, path: str, page: str | None = None, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, page or path), **data})


def events(app: Flask, kind: str | None = None) -> list[EncounterEvent]:
    with database(app).session_factory() as session:
        query = select(EncounterEvent).order_by(EncounterEvent.seq)
        if kind:
            query = query.where(EncounterEvent.kind == kind)
        return list(session.scalars(query))


# ---- fast paths: one tap, and the words stay on every screen


@pytest.mark.parametrize(
    ("what", "situation", "lands_on"),
    [
        ("emergency", "exigency", "/desk/exigency"),
        ("entering", "entry_without_consent", "/desk/outcome"),
        ("student", "student_sought", "/desk/request#people"),
        ("records", "records_sought", "/desk/request#people"),
        ("staff", "staff_sought", "/desk/request#people"),
        ("parent", "parent_sought", "/desk/request#child"),
    ],
)
def test_one_tap_puts_the_words_in_the_panel_and_they_stay_on_every_step(
    app: Flask, desk: FlaskClient, what: str, situation: str, lands_on: str
) -> None:
    response = tap(desk, what)
    assert response.status_code == 302
    assert response.headers["Location"] == lands_on
    for step in STEPS:
        assert situation_on(desk, STEP_PATHS[step]) == situation, step
    # Saving the short form it landed on (as a browser posts it: the recorded kind
    # stays checked) keeps the words in place.
    path = lands_on.split("#")[0]
    kinds = [k for k in the_encounter(app).request_kinds.split(",") if k]
    post(
        desk,
        path,
        witnesses="Ms. Park",
        purpose="Asked for a student by name.",
        request_kinds=kinds,
        exigency="yes" if what == "emergency" else "",
    )
    for step in STEPS:
        assert situation_on(desk, STEP_PATHS[step]) == situation, step


def test_emergency_tap_alerts_levels_one_and_two_and_keeps_what_was_written(
    app: Flask, desk: FlaskClient
) -> None:
    post(desk, "/desk/exigency", exigency_reason="Said someone is in danger.")
    tap(desk, "emergency")
    encounter = the_encounter(app)
    assert encounter.exigency is True
    assert encounter.exigency_reason == "Said someone is in danger."
    kinds = [(row.kind, row.recipient) for row in outbox_rows(app)]
    assert ("exigency", "morgan.blake@demo-district.example") in kinds
    tap(desk, "emergency")  # a second tap changes nothing and sends nothing more
    assert len(outbox_rows(app)) == len(kinds)


def test_going_in_records_the_time_and_the_fact_outlasts_a_later_outcome(
    app: Flask, desk: FlaskClient
) -> None:
    tap(desk, "entering")
    encounter = the_encounter(app)
    assert encounter.entered_without_consent is True
    assert encounter.outcome == "entered_without_consent"
    assert re.fullmatch(r"\d{2}:\d{2}", encounter.entry_started or "")
    post(desk, "/desk/outcome", outcome="left", entry_started=encounter.entry_started)
    assert the_encounter(app).entered_without_consent is True
    assert situation_on(desk, "/desk/close") == "entry_without_consent"


def test_a_fast_path_needs_its_csrf_token_and_a_known_name(app: Flask, desk: FlaskClient) -> None:
    desk.post("/desk/now/emergency", data={})
    assert the_encounter(app).exigency is None
    response = tap(desk, "lunch")
    assert response.status_code == 302 and response.headers["Location"] == "/desk/"
    assert [e.kind for e in events(app)] == ["started", "alert_enqueued"]


def test_the_staff_or_parent_choice_is_one_screen_of_two_buttons(desk: FlaskClient) -> None:
    page = desk.get("/desk/person").get_data(as_text=True)
    assert 'action="/desk/now/staff"' in page and 'action="/desk/now/parent"' in page
    assert ">A staff member<" in page and ">A parent, guardian or other adult<" in page


def test_the_first_screen_offers_every_fast_path(desk: FlaskClient) -> None:
    page = desk.get("/desk/").get_data(as_text=True)
    for words in (
        "They say it's an emergency",
        "They are going in",
        "They are showing a document",
        "They want a student",
        "They want records or information",
        "They want a staff member or a parent",
    ):
        assert words in page, words


# ---- the document: one tap on what the desk can see


@pytest.mark.parametrize("pick", PICKS, ids=lambda p: p.key)
def test_one_tap_on_a_common_document_gives_its_first_impression_and_script(
    app: Flask, desk: FlaskClient, pick: Any
) -> None:
    response = post(desk, "/desk/document", pick=pick.key)
    assert response.status_code == 302 and response.headers["Location"] == "/desk/document"
    expected = triage(pick.answers)
    assert expected is not None
    encounter = the_encounter(app)
    assert encounter.doc_first_impression == expected.value
    situation = "warrant_person" if pick.key == "court_arrest" else f"doc:{expected.value}"
    for step in ("document", "start", "agents", "close"):
        assert situation_on(desk, STEP_PATHS[step]) == situation
    with database(app).session_factory() as session:
        document = session.scalars(select(Document)).one()
        assert document.pick == pick.key
        assert json.loads(document.answers) == pick.answers.to_dict()
    page = desk.get("/desk/document").get_data(as_text=True)
    assert f'value="{pick.key}" class="pick picked" aria-pressed="true"' in page


def test_refining_a_pick_with_the_questions_replaces_it(app: Flask, desk: FlaskClient) -> None:
    post(desk, "/desk/document", pick="court_search")
    assert the_encounter(app).doc_first_impression == "judicial_warrant"
    # Looking closer, it says "Immigration Judge": the questions override the tap.
    post(
        desk,
        "/desk/document",
        action="answers",
        shown="yes",
        court_named="yes",
        judge_signed="yes",
        dhs_form="no",
        immigration_court="yes",
        grand_jury="no",
        asks="enter_or_arrest",
    )
    assert the_encounter(app).doc_first_impression == DocType.ADMINISTRATIVE_WARRANT.value
    with database(app).session_factory() as session:
        assert session.scalars(select(Document)).one().pick is None


def test_a_warrant_that_names_a_person_changes_the_words(app: Flask, desk: FlaskClient) -> None:
    post(desk, "/desk/document", pick="court_search")
    assert situation_on(desk, "/desk/") == "doc:judicial_warrant"
    post(desk, "/desk/document", names_person="yes")
    assert situation_on(desk, "/desk/") == "warrant_person"
    post(desk, "/desk/document", names_person="no")
    assert situation_on(desk, "/desk/") == "doc:judicial_warrant"


def jpeg() -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 60)).save(output, "JPEG")
    return output.getvalue()


def test_a_photo_and_a_pick_in_one_tap_keep_the_details_typed(
    app: Flask, desk: FlaskClient
) -> None:
    token = csrf_token(desk, "/desk/document")
    response = desk.post(
        "/desk/document",
        data={
            "csrf_token": token,
            "pick": "dhs_warrant",
            "case_number": "A-123",
            "photo": (io.BytesIO(jpeg()), "page1.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with database(app).session_factory() as session:
        assert session.scalars(select(Document)).one().case_number == "A-123"
        assert len(session.scalars(select(Photo)).all()) == 1


def test_a_bad_photo_is_refused_beside_the_field_and_nothing_else_is_lost(
    app: Flask, desk: FlaskClient
) -> None:
    token = csrf_token(desk, "/desk/document")
    response = desk.post(
        "/desk/document",
        data={
            "csrf_token": token,
            "action": "photo",
            "issuer": "District Court",
            "photo": (io.BytesIO(b"<html>not a photo</html>"), "page.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="photo-error"' in body
    assert 'value="District Court"' in body
    with database(app).session_factory() as session:
        assert session.scalars(select(Document)).one().issuer == "District Court"
        assert session.scalars(select(Photo)).all() == []


def test_add_photo_without_a_photo_says_so_and_keeps_the_page(desk: FlaskClient) -> None:
    response = post(desk, "/desk/document", action="photo", dates="1 March")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Choose or take a photo first." in body
    assert 'value="1 March"' in body


def test_enter_in_a_field_saves_and_never_picks_a_document(desk: FlaskClient) -> None:
    page = desk.get("/desk/document").get_data(as_text=True)
    form = page.split('id="document-form"')[1]
    first_button = re.search(r"<button[^>]*>", form)
    assert first_button and 'value="save"' in first_button.group(0)
    for path in ("/desk/request", "/desk/agents"):
        page = desk.get(path).get_data(as_text=True)
        form = page.split('class="capture" novalidate>')[1]
        first = re.search(r"<button[^>]*>", form)
        assert first and "default-submit" in first.group(0), path


# ---- one form per step: nothing typed is lost


def test_adding_a_name_keeps_everything_typed_on_the_request_step(
    app: Flask, desk: FlaskClient
) -> None:
    response = post(
        desk,
        "/desk/request",
        action="add_person",
        person_name="Ana Example",
        relation="student",
        purpose="Said it is a welfare check.",
        consent_claimed="yes",
        consent_claim="Said the aunt agreed this morning.",
        request_kinds=["student_access"],
    )
    assert response.status_code == 302 and response.headers["Location"] == "/desk/request#people"
    encounter = the_encounter(app)
    assert encounter.purpose == "Said it is a welfare check."
    assert encounter.consent_claim == "Said the aunt agreed this morning."
    assert encounter.consent_claimed == "yes"
    page = desk.get("/desk/request").get_data(as_text=True)
    assert "Said it is a welfare check." in page and "Ana Example (Student)" in page
    assert 'name="person_name" type="text" value=""' in page  # ready for the next name


def test_removing_a_name_keeps_everything_typed(app: Flask, desk: FlaskClient) -> None:
    post(desk, "/desk/request", action="add_person", person_name="Ana Example")
    response = post(desk, "/desk/request", remove="1", purpose="Asked twice.")
    assert response.status_code == 302
    encounter = the_encounter(app)
    assert encounter.purpose == "Asked twice."
    assert "Ana Example" not in desk.get("/desk/request").get_data(as_text=True)


def test_who_stays_with_the_child_is_recorded_but_never_in_events(
    app: Flask, desk: FlaskClient
) -> None:
    tap(desk, "parent")
    page = desk.get("/desk/request").get_data(as_text=True)
    assert "Staff member who stays with the child" in page
    post(desk, "/desk/request", request_kinds=["adult"], child_with="Ms. Rivera")
    assert the_encounter(app).child_with == "Ms. Rivera"
    assert all("Rivera" not in event.data for event in events(app))
    assert any('"child_with":"recorded"' in event.data for event in events(app))


def test_an_agents_identification_is_a_set_with_a_card(app: Flask, desk: FlaskClient) -> None:
    post(
        desk,
        "/desk/agents",
        name="R. Alvarez",
        id_shown=["when_asked", "hidden"],
        card_kept="y",
    )
    with database(app).session_factory() as session:
        agent = session.scalars(select(Agent)).one()
    assert agent.id_shown == "when_asked,hidden"
    assert agent.card_kept is True
    page = desk.get("/desk/agents/1").get_data(as_text=True)
    assert page.count("checked") >= 3  # both identification boxes and the card


def test_edit_another_agent_saves_the_one_being_typed_first(app: Flask, desk: FlaskClient) -> None:
    post(desk, "/desk/agents", name="First Agent")
    response = post(desk, "/desk/agents", name="Second Agent", edit="1")
    assert response.status_code == 302 and response.headers["Location"] == "/desk/agents/1"
    with database(app).session_factory() as session:
        names = [a.name for a in session.scalars(select(Agent).order_by(Agent.position))]
    assert names == ["First Agent", "Second Agent"]


def test_a_forged_request_kind_is_refused(app: Flask, desk: FlaskClient) -> None:
    response = post(desk, "/desk/request", request_kinds=["immigration_status"])
    assert response.status_code == 422
    assert the_encounter(app).request_kinds == ""


def test_now_buttons_stamp_the_time_and_keep_what_was_typed(app: Flask, desk: FlaskClient) -> None:
    response = post(desk, "/desk/outcome", now="entry_ended", witnesses="Ms. Park")
    assert response.status_code == 302 and response.headers["Location"] == "/desk/outcome"
    encounter = the_encounter(app)
    assert re.fullmatch(r"\d{2}:\d{2}", encounter.entry_ended or "")
    assert encounter.witnesses == "Ms. Park"


def test_saving_the_outcome_never_carries_the_desk_onto_finish(desk: FlaskClient) -> None:
    tap(desk, "entering")
    response = post(desk, "/desk/outcome", outcome="entered_without_consent")
    assert response.headers["Location"] == "/desk/outcome"
    page = desk.get("/desk/outcome").get_data(as_text=True)
    say = SAY.search(page)
    assert say and html.unescape(say.group(2)).startswith("I do not consent")


# ---- channel and place, before or after the tap


def route_bus(app: Flask) -> None:
    result = run(
        app,
        "contacts",
        "add",
        "--school",
        "Lincoln Elementary School",
        "--name",
        "Transportation",
        "--email",
        "transport@demo-district.example",
        "--places",
        "bus,field_trip",
    )
    assert result.exit_code == 0, result.output


def test_the_channel_is_corrected_after_the_tap_and_the_words_follow(
    app: Flask, desk: FlaskClient
) -> None:
    assert situation_on(desk, "/desk/agents") == "default"
    response = post(desk, "/desk/channel", "/desk/", channel="phone")
    assert response.status_code == 302
    assert the_encounter(app).channel == "phone"
    assert situation_on(desk, "/desk/agents") == "phone"
    assert "identification" not in SAY.search(desk.get("/desk/agents").get_data(as_text=True))[2]
    [changed] = events(app, "channel_changed")
    assert json.loads(changed.data) == {"channel": "phone", "place": "phone"}
    # Taken for a call by mistake: back in person, the place "phone" goes with it.
    post(desk, "/desk/channel", "/desk/", channel="in_person", place="phone")
    assert (the_encounter(app).channel, the_encounter(app).place) == ("in_person", None)
    assert situation_on(desk, "/desk/agents") == "default"


def test_an_offsite_place_chosen_after_the_tap_alerts_its_contacts_once(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    route_bus(app)
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    assert [r.recipient for r in outbox_rows(app)] == ["dana.reyes@demo-district.example"]
    post(client, "/desk/channel", "/desk/", channel="offsite", place="bus")
    assert situation_on(client, "/desk/") == "offsite"
    assert deliver(app) == 2
    to_transport = [m for m in smtp_server.messages if m["To"] == "transport@demo-district.example"]
    assert len(to_transport) == 1
    body = to_transport[0].get_payload(decode=True).decode()
    assert "Where: a bus or bus stop." in body
    assert "reported by school staff from elsewhere" in body
    # Choosing it again, or another place the contact covers, alerts nobody twice.
    post(client, "/desk/channel", "/desk/", channel="offsite", place="field_trip")
    post(client, "/desk/channel", "/desk/", channel="offsite", place="bus")
    assert len([r for r in outbox_rows(app) if r.recipient.startswith("transport")]) == 1


def test_an_offsite_place_chosen_before_the_tap_is_alerted_with_it(
    app: Flask, district: Any
) -> None:
    route_bus(app)
    client, _ = enroll_client(app, "Lincoln Elementary School")
    page = client.get("/desk/").get_data(as_text=True)
    assert "Where is our staff member?" in page
    client.post("/desk/start", data={**start_fields(page), "channel": "offsite", "place": "bus"})
    encounter = the_encounter(app)
    assert (encounter.channel, encounter.place) == ("offsite", "bus")
    recipients = sorted(r.recipient for r in outbox_rows(app))
    assert recipients == ["dana.reyes@demo-district.example", "transport@demo-district.example"]
    assert all(r.kind == "alert" and r.level == 1 for r in outbox_rows(app))


def test_a_place_contact_is_not_alerted_for_the_front_desk(app: Flask, district: Any) -> None:
    route_bus(app)
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    assert [r.recipient for r in outbox_rows(app)] == ["dana.reyes@demo-district.example"]


def test_a_place_is_only_taken_beside_the_offsite_channel_before_the_tap(
    app: Flask, district: Any
) -> None:
    route_bus(app)
    client, _ = enroll_client(app, "Lincoln Elementary School")
    page = client.get("/desk/").get_data(as_text=True)
    client.post("/desk/start", data={**start_fields(page), "channel": "phone", "place": "bus"})
    assert the_encounter(app).place == "phone"
    assert len(outbox_rows(app)) == 1


def test_an_unknown_channel_or_place_comes_back_with_a_message(
    app: Flask, desk: FlaskClient
) -> None:
    response = post(desk, "/desk/channel", "/desk/", channel="fax")
    assert response.status_code == 422
    assert the_encounter(app).channel == "in_person"


# ---- what the desk learns, and how fast it asks


def test_the_desk_asks_quickly_until_someone_acknowledges(app: Flask, desk: FlaskClient) -> None:
    assert desk.get("/desk/status.json").get_json()["poll_ms"] == 400
    deliver(app)
    assert desk.get("/desk/status.json").get_json()["poll_ms"] == 400  # still awaited
    office = login(app, "dana.reyes@demo-district.example")
    page = f"/office/encounters/{the_encounter(app).public_id}"
    office.post(f"{page}/acknowledge", data={"csrf_token": csrf_token(office, page)})
    status = desk.get("/desk/status.json").get_json()
    assert status["ack"] and status["poll_ms"] == 2000


def test_the_status_carries_the_panel_and_what_is_folded(app: Flask, desk: FlaskClient) -> None:
    post(desk, "/desk/document", pick="dhs_warrant")
    tap(desk, "emergency")
    panel = desk.get("/desk/status.json?step=agents").get_json()["panel"]
    assert panel["situation"] == "exigency"
    assert panel["say"].startswith("I will not interfere")
    assert [b["situation"] for b in panel["earlier"]] == ["doc:administrative_warrant"]
    assert panel["step_say"].startswith("May I see your identification")


def test_the_cover_shows_the_numbers_once_a_window_is_missed(app: Flask, desk: FlaskClient) -> None:
    status = desk.get("/desk/status.json").get_json()
    assert status["cover"] == {"numbers": [], "message": False}
    assert "Please call" not in desk.get("/desk/cover").get_data(as_text=True)
    clock.set_offset(4 * 60)  # past the 3-minute level-1 window, nobody acknowledged
    try:
        status = desk.get("/desk/status.json").get_json()
        cover = desk.get("/desk/cover").get_data(as_text=True)
    finally:
        clock.set_offset(0)
    assert status["cover"]["numbers"] == ["(555) 010-0111", "(555) 010-0100"]
    assert "Please call the district office: (555) 010-0111, (555) 010-0100" in cover


def test_the_cover_marks_a_waiting_message_without_showing_it(
    app: Flask, desk: FlaskClient
) -> None:
    office = login(app, "dana.reyes@demo-district.example")
    page = f"/office/encounters/{the_encounter(app).public_id}"
    office.post(
        f"{page}/message", data={"csrf_token": csrf_token(office, page), "preset": "on_my_way"}
    )
    assert desk.get("/desk/status.json").get_json()["cover"]["message"] is True
    cover = desk.get("/desk/cover").get_data(as_text=True)
    assert "Tap to continue •" in cover and "on my way" not in cover


# ---- "Started by mistake": first screen only, while it lasts, confirmed


def test_started_by_mistake_is_on_the_first_screen_only(desk: FlaskClient) -> None:
    assert 'href="/desk/mistake"' in desk.get("/desk/").get_data(as_text=True)
    for path in ("/desk/agents", "/desk/request", "/desk/document", "/desk/close"):
        assert "/desk/mistake" not in desk.get(path).get_data(as_text=True), path


def test_started_by_mistake_asks_for_confirmation_first(app: Flask, desk: FlaskClient) -> None:
    page = desk.get("/desk/mistake").get_data(as_text=True)
    assert "Stand down this alert?" in page
    assert "Yes, it was started by mistake" in page and "No, keep the alert" in page
    assert the_encounter(app).status == "open"  # looking at it changes nothing


def test_the_stand_down_needs_the_pin_of_whoever_identified(app: Flask, desk: FlaskClient) -> None:
    people = desk.get("/desk/staff").get_data(as_text=True)
    user = re.search(r'name="user" value="([^"]+)">\s*<button[^>]*>Pat Lee<', people)
    assert user
    post(desk, "/desk/staff", user=user.group(1))
    post(desk, "/desk/staff/pin", pin="123456")
    page = desk.get("/desk/mistake").get_data(as_text=True)
    assert "Pat Lee, confirm with your PIN." in page
    response = post(desk, "/desk/mistake", pin="000000")
    assert response.status_code == 422
    assert "That PIN is not right." in response.get_data(as_text=True)
    assert the_encounter(app).status == "open"
    response = post(desk, "/desk/mistake", "/desk/mistake", pin="123456")
    assert response.status_code == 302
    assert the_encounter(app).status == "stood_down"
    [stood] = events(app, "stood_down")
    assert stood.actor_label.startswith("Pat Lee at kiosk")


def test_the_stand_down_tells_level_one_in_plain_words(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    deliver(app)
    post(client, "/desk/mistake")
    deliver(app)
    [stand_down] = [m for m in smtp_server.messages if "Stand down" in m["Subject"]]
    assert stand_down["To"] == "dana.reyes@demo-district.example"
    body = " ".join(stand_down.get_payload(decode=True).decode().split())
    assert STAND_DOWN_TEXT in body
    assert STAND_DOWN_TEXT == (
        "Stood down at the desk as started by mistake. If you did not expect this, call the school."
    )


def test_after_its_window_the_stand_down_is_gone(app: Flask, desk: FlaskClient) -> None:
    clock.set_offset(121)
    try:
        start = desk.get("/desk/").get_data(as_text=True)
        response = desk.get("/desk/mistake")
        refused = post(desk, "/desk/mistake", "/desk/agents")
    finally:
        clock.set_offset(0)
    assert "/desk/mistake" not in start
    assert response.status_code == 302
    assert refused.status_code == 302
    assert the_encounter(app).status == "open"


def test_the_window_left_is_on_the_page_for_the_button_to_leave_on_time(
    desk: FlaskClient,
) -> None:
    page = desk.get("/desk/").get_data(as_text=True)
    seconds = re.search(r'id="mistake" data-seconds="(\d+)"', page)
    assert seconds and 100 <= int(seconds.group(1)) <= 120


# ---- the built-in script pack follows the release unless the district chose its own


def test_an_old_built_in_draft_is_replaced_but_an_approved_pack_is_kept(app: Flask) -> None:
    from kiosk.clock import now_utc
    from kiosk.db import writing
    from kiosk.models import ScriptVersion
    from kiosk.protocol.scriptstore import current_script_version

    with writing(), database(app).session_factory() as session, session.begin():
        old = ScriptVersion(
            label="old",
            sha256="0" * 64,
            content="{}",
            status="draft",
            author="built-in default",
            active=True,
            created_at=now_utc() - timedelta(days=30),
        )
        session.add(old)
        session.flush()
        new = current_script_version(session, now_utc())
        assert new.id != old.id and new.active and not old.active
        new.active = False
        approved = ScriptVersion(
            label="district pack",
            sha256="1" * 64,
            content="{}",
            status="approved",
            author="counsel",
            active=True,
            created_at=now_utc(),
        )
        session.add(approved)
        session.flush()
        assert current_script_version(session, now_utc()).id == approved.id


def test_messages_never_carry_who_stays_with_the_child(app: Flask, desk: FlaskClient) -> None:
    post(desk, "/desk/request", request_kinds=["adult"], child_with="Ms. Rivera")
    post(desk, "/desk/document", pick="none")
    with database(app).session_factory() as session:
        rows = session.scalars(select(OutboxMessage)).all()
        assert rows and all("Rivera" not in (r.body + r.payload) for r in rows)
        assert session.scalars(select(Encounter)).one().child_with == "Ms. Rivera"


def test_an_unchanged_desk_gets_a_short_answer_and_a_change_gets_everything(
    app: Flask, desk: FlaskClient
) -> None:
    first = desk.get("/desk/status.json").get_json()
    version = first["version"]
    again = desk.get(f"/desk/status.json?since={version}").get_json()
    assert again == {"open": True, "unchanged": True, "version": version, "poll_ms": 400}
    page = desk.get("/desk/").get_data(as_text=True)
    assert f'data-version="{version}"' in page  # the first poll after the page is short too
    # The alert accepted: no event, but the desk must learn it.
    deliver(app)
    sent = desk.get(f"/desk/status.json?since={version}").get_json()
    assert sent["alert"]["state"] == "notified" and sent["version"] != version
    # An acknowledgement: everything again, with the calm pace.
    office = login(app, "dana.reyes@demo-district.example")
    record = f"/office/encounters/{the_encounter(app).public_id}"
    office.post(f"{record}/acknowledge", data={"csrf_token": csrf_token(office, record)})
    acked = desk.get(f"/desk/status.json?since={sent['version']}").get_json()
    assert acked["ack"] and acked["poll_ms"] == 2000 and "unchanged" not in acked


def test_time_alone_changes_the_version_when_the_desk_must_call(
    app: Flask, desk: FlaskClient
) -> None:
    version = desk.get("/desk/status.json").get_json()["version"]
    clock.set_offset(11)  # the alert is still not accepted after 10 seconds
    try:
        late = desk.get(f"/desk/status.json?since={version}").get_json()
    finally:
        clock.set_offset(0)
    assert late["alert"]["state"] == "undelivered"
    assert late["cover"]["numbers"]


# ---- an old record still open does not swallow a new request


def test_an_old_open_record_asks_whether_it_is_the_same_visit(
    app: Flask, desk: FlaskClient
) -> None:
    old = the_encounter(app)
    assert "Is this the same visit?" not in desk.get("/desk/").get_data(as_text=True)
    clock.set_offset(8 * 3600 + 60)
    try:
        page = desk.get("/desk/").get_data(as_text=True)
        assert "Is this the same visit?" in page
        assert "is still open at this desk" in page
        assert 'id="say-line"' not in page  # nothing of the old record on this screen
        response = post(desk, "/desk/visit", "/desk/", answer="new")
        assert response.status_code == 302
        with database(app).session_factory() as session:
            first, second = session.scalars(select(Encounter).order_by(Encounter.id)).all()
        assert first.id == old.id and first.status == "resolved"
        assert first.desk_closed_at is not None
        assert "abandoned" in [e.kind for e in events(app) if e.encounter_id == old.id]
        assert second.status == "open" and second.kiosk_id == old.kiosk_id
        alerts = [r for r in outbox_rows(app) if r.encounter_id == second.id and r.kind == "alert"]
        assert [r.recipient for r in alerts] == ["dana.reyes@demo-district.example"]
        assert SAY.search(desk.get("/desk/").get_data(as_text=True))
    finally:
        clock.set_offset(0)


def test_the_same_visit_goes_on_and_is_not_asked_again_at_once(
    app: Flask, desk: FlaskClient
) -> None:
    clock.set_offset(8 * 3600 + 60)
    try:
        response = post(desk, "/desk/visit", "/desk/", answer="same")
        assert response.status_code == 302
        page = desk.get("/desk/").get_data(as_text=True)
        assert "Is this the same visit?" not in page and SAY.search(page)
    finally:
        clock.set_offset(0)
    encounter = the_encounter(app)
    assert encounter.visit_confirmed_at is not None and encounter.status == "open"
    assert len(encounters_of(app)) == 1


def test_a_record_running_past_the_end_of_the_school_day_is_asked_about(
    app: Flask, desk: FlaskClient
) -> None:
    from kiosk.localtime import local
    from kiosk.models import School

    encounter = the_encounter(app)
    with database(app).session_factory() as session, session.begin():
        school = session.get(School, encounter.school_id)
        assert school is not None
        started = local(encounter.started_at, school.timezone)
        closing = (started + timedelta(minutes=30)).strftime("%H:%M")
        school.hours_open, school.hours_close = "00:00", closing
    if closing < started.strftime("%H:%M"):
        pytest.skip("the test would cross midnight")
    assert "Is this the same visit?" not in desk.get("/desk/").get_data(as_text=True)
    clock.set_offset(31 * 60)
    try:
        assert "Is this the same visit?" in desk.get("/desk/").get_data(as_text=True)
    finally:
        clock.set_offset(0)


def encounters_of(app: Flask) -> list[Encounter]:
    with database(app).session_factory() as session:
        return list(session.scalars(select(Encounter)))
