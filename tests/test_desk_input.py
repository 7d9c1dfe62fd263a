"""Bad input at every step: a clear message next to the field, and nothing typed is lost."""

from __future__ import annotations

import html
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.forms import TEXT_LIMIT
from kiosk.models import Agent, Document, Encounter, NamedPerson
from kiosk.notify.channels import Outgoing, build_email
from kiosk.webdb import database
from tests.conftest import csrf_token, tap_start

# (page, post path, field, limit): limits come from the columns.
FIELDS = [
    ("/desk/agents", "/desk/agents", "name", Agent.name.type.length),
    ("/desk/agents", "/desk/agents", "badge_number", Agent.badge_number.type.length),
    ("/desk/agents", "/desk/agents", "agency_printed", Agent.agency_printed.type.length),
    ("/desk/request", "/desk/request", "request_other", Encounter.request_other.type.length),
    ("/desk/request", "/desk/request", "purpose", TEXT_LIMIT),
    ("/desk/request", "/desk/request", "person_name", 200),
    ("/desk/document", "/desk/document", "issuer", Document.issuer.type.length),
    ("/desk/document", "/desk/document", "case_number", Document.case_number.type.length),
    ("/desk/document", "/desk/document", "names_addresses", TEXT_LIMIT),
    ("/desk/exigency", "/desk/exigency", "exigency_reason", TEXT_LIMIT),
    ("/desk/exigency", "/desk/exigency", "exigency_directives", TEXT_LIMIT),
    ("/desk/outcome", "/desk/outcome", "entry_areas", TEXT_LIMIT),
    ("/desk/outcome", "/desk/outcome", "witnesses", TEXT_LIMIT),
]
MULTILINE = {
    "purpose",
    "names_addresses",
    "exigency_reason",
    "exigency_directives",
    "entry_areas",
    "witnesses",
}


@pytest.fixture
def open_desk(kiosk_client: FlaskClient) -> FlaskClient:
    tap_start(kiosk_client)
    return kiosk_client


def post(client: FlaskClient, page: str, path: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, page), **data})


def field_error(body: str, field: str) -> str:
    """Return the error shown next to the field, or ''."""
    marker = f'id="{field}-error">'
    if marker not in body:
        return ""
    return html.unescape(body.split(marker)[1].split("</p>")[0])


@pytest.mark.parametrize(("page", "path", "field", "limit"), FIELDS)
def test_too_long_is_refused_next_to_the_field_and_kept(
    open_desk: FlaskClient, page: str, path: str, field: str, limit: int
) -> None:
    value = "x" * (limit + 1)
    response = post(open_desk, page, path, **{field: value, "agency_printed_extra": ""})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert f"Keep this under {limit} characters." in field_error(body, field)
    assert value in body  # what was typed comes back


@pytest.mark.parametrize(("page", "path", "field", "limit"), FIELDS)
def test_nul_and_control_characters_are_refused(
    open_desk: FlaskClient, page: str, path: str, field: str, limit: int
) -> None:
    for value in ("Agent\x00Smith", "bell\x07here", "esc\x1b[31m"):
        response = post(open_desk, page, path, **{field: value})
        assert response.status_code == 422, value
        assert "control character" in field_error(response.get_data(as_text=True), field)


@pytest.mark.parametrize(("page", "path", "field", "limit"), FIELDS)
def test_line_breaks_only_in_notes(
    open_desk: FlaskClient, page: str, path: str, field: str, limit: int, app: Flask
) -> None:
    value = "first line\r\nBcc: someone@example.org"
    response = post(open_desk, page, path, **{field: value})
    if field in MULTILINE:
        assert response.status_code == 302
    else:
        assert response.status_code == 422
        body = response.get_data(as_text=True)
        assert "Keep this on one line" in field_error(body, field)
        assert "Bcc: someone@example.org" in body


@pytest.mark.parametrize(("page", "path", "field", "limit"), FIELDS)
def test_html_is_stored_as_typed_and_always_shown_escaped(
    open_desk: FlaskClient, page: str, path: str, field: str, limit: int, app: Flask
) -> None:
    value = '<script>alert("x")</script><b onmouseover="y">'
    response = post(open_desk, page, path, **{field: value})
    assert response.status_code == 302
    shown = open_desk.get(page).get_data(as_text=True)
    assert "<script>alert" not in shown
    assert '<b onmouseover="y">' not in shown
    if field != "person_name":
        assert html.escape(value, quote=True) in shown or "&lt;script&gt;" in shown
    else:
        assert "&lt;script&gt;alert" in shown


def test_empty_steps_are_accepted_and_record_nothing(open_desk: FlaskClient, app: Flask) -> None:
    for page, path in [
        ("/desk/agents", "/desk/agents"),
        ("/desk/request", "/desk/request"),
        ("/desk/document", "/desk/document"),
        ("/desk/exigency", "/desk/exigency"),
        ("/desk/outcome", "/desk/outcome"),
    ]:
        response = post(open_desk, page, path)
        assert response.status_code == 302, (path, response.get_data(as_text=True)[:500])
    with database(app).session_factory() as session:
        assert session.scalars(select(Agent)).all() == []
        encounter = session.scalars(select(Encounter)).one()
        kinds = [event.kind for event in encounter.events]
        assert kinds == ["started", "alert_enqueued"]


def test_empty_name_gets_a_message(open_desk: FlaskClient) -> None:
    response = post(
        open_desk,
        "/desk/request",
        "/desk/request",
        person_name="  ",
        purpose="Asked about a student.",
        action="add_person",
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Type the name" in field_error(body, "person_name")
    assert "Asked about a student." in body  # what else was typed comes back


def test_bad_time_and_bad_number_are_explained_and_kept(open_desk: FlaskClient) -> None:
    response = post(
        open_desk,
        "/desk/outcome",
        "/desk/outcome",
        entry_started="25:99",
        witnesses="Ms. Park, front office",
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "10:45" in field_error(body, "entry_started")
    assert 'value="25:99"' in body
    assert "Ms. Park, front office" in body
    response = post(
        open_desk,
        "/desk/request",
        "/desk/request",
        agents_present="lots",
        purpose="Asked about a student.",
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert field_error(body, "agents_present")
    assert "Asked about a student." in body


def test_one_bad_field_keeps_every_other_field(open_desk: FlaskClient, app: Flask) -> None:
    data = {
        "name": "R. Alvarez",
        "badge_number": "44\x0071",
        "agency_printed": "Homeland Security Investigations",
        "phone": "555-0100",
        "supervisor_name": "K. Lee",
        "id_shown": "when_asked",
    }
    response = post(open_desk, "/desk/agents", "/desk/agents", **data)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    for key in ("name", "agency_printed", "phone", "supervisor_name"):
        assert f'value="{html.escape(data[key])}"' in body
    assert 'checked id="id_shown-1"' in body or ('value="when_asked"' in body and "checked" in body)
    with database(app).session_factory() as session:
        assert session.scalars(select(Agent)).all() == []  # nothing half-saved


def test_status_words_warn_but_never_block(open_desk: FlaskClient, app: Flask) -> None:
    response = post(
        open_desk, "/desk/request", "/desk/request", purpose="Asked whether the family has a visa."
    )
    assert response.status_code == 302
    page = open_desk.get(response.headers["Location"]).get_data(as_text=True)
    assert "Do not write down anyone&#39;s immigration status" in page
    with database(app).session_factory() as session:
        assert session.scalars(select(Encounter)).one().purpose == (
            "Asked whether the family has a visa."
        )


def test_names_are_kept_out_of_events(open_desk: FlaskClient, app: Flask) -> None:
    post(
        open_desk,
        "/desk/request",
        "/desk/request",
        action="add_person",
        person_name="Ana Example",
        relation="student",
    )
    with database(app).session_factory() as session:
        person = session.scalars(select(NamedPerson)).one()
        assert person.name == "Ana Example"
        assert len(person.name_index) == 64 and "Ana" not in person.name_index
        encounter = session.scalars(select(Encounter)).one()
        assert all("Ana" not in event.data for event in encounter.events)


def test_email_headers_never_carry_a_line_break() -> None:
    message = Outgoing(
        id=1,
        key="abc.1.email.alert.1.0",
        channel="email",
        kind="alert",
        recipient="designee@district.test\r\nBcc: leak@example.org",
        subject="Alert\r\nBcc: leak@example.org",
        body="Body",
        payload="{}",
        attempts=1,
    )
    email = build_email(message, "alerts@district.test")
    raw = email.as_string()
    header = raw.split("\n\n")[0]
    assert "\nBcc:" not in header
    assert email["Message-ID"] == "<abc.1.email.alert.1.0@district.test>"


# Every one-line field of the desk: (page, field).
ONE_LINE_FIELDS = [
    ("/desk/agents", "name"),
    ("/desk/agents", "badge_number"),
    ("/desk/agents", "agency_printed"),
    ("/desk/agents", "title"),
    ("/desk/agents", "phone"),
    ("/desk/agents", "supervisor_name"),
    ("/desk/agents", "supervisor_phone"),
    ("/desk/request", "request_other"),
    ("/desk/request", "child_with"),
    ("/desk/request", "person_name"),
    ("/desk/document", "issuer"),
    ("/desk/document", "case_number"),
    ("/desk/document", "dates"),
    ("/desk/outcome", "entry_started"),
]
# A field on the same page that takes any text, to show the rest comes back as typed.
COMPANION = {
    "/desk/agents": ("name", "Officer Lane"),
    "/desk/request": ("purpose", "Asked about a schedule"),
    "/desk/document": ("names_addresses", "12 Elm Street"),
    "/desk/outcome": ("witnesses", "Ms. Ortiz at the front desk"),
}
DIRECTION = [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


@pytest.mark.parametrize(("page", "field"), ONE_LINE_FIELDS)
def test_one_line_fields_refuse_direction_and_zero_width_characters(
    open_desk: FlaskClient, page: str, field: str
) -> None:
    other, other_value = COMPANION[page]
    if other == field:
        other, other_value = "badge_number", "B-1234"
    for char in DIRECTION + ZERO_WIDTH:
        value = f"10{char}:45"
        response = post(open_desk, page, page, **{field: value, other: other_value})
        assert response.status_code == 422, repr(char)
        body = response.get_data(as_text=True)
        message = field_error(body, field)
        expected = "reverses or reorders text" if char in DIRECTION else "invisible character"
        assert expected in message, (repr(char), message)
        assert "Please retype it." in message
        assert other_value in body  # everything typed comes back
        assert value in body


def test_plain_text_in_any_script_is_still_accepted(open_desk: FlaskClient, app: Flask) -> None:
    # Right-to-left names are fine: only the invisible marks around them are refused.
    response = post(
        open_desk,
        "/desk/agents",
        "/desk/agents",
        name="محمد الأحمد",
        badge_number="שלום 42",
        agency_printed="Département d'État",
    )
    assert response.status_code == 302
    with database(app).session_factory() as session:
        agent = session.scalars(select(Agent)).one()
        assert agent.badge_number == "שלום 42"
        assert agent.agency_printed == "Département d'État"
