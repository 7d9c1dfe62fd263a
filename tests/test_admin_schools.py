"""Schools and the district in the administration pages: forms keep what was typed and say
what is wrong next to the field; every change is recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.models import AuditEntry, District, School
from kiosk.webdb import database
from tests.conftest import csrf_token
from tests.test_policy import LINCOLN, login


@pytest.fixture
def admin(app: Flask, district: Any) -> FlaskClient:
    return login(app, "admin@demo-district.example", "demo-password")


def school(app: Flask, name: str) -> School | None:
    with database(app).session_factory() as session:
        return session.scalar(select(School).where(School.name == name))


def entries(app: Flask, action: str) -> list[AuditEntry]:
    with database(app).session_factory() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def fields(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Oak School",
        "timezone": "America/Denver",
        "timezone_other": "",
        "office_phone": "555-0110",
        "hours_open": "07:30",
        "hours_close": "15:45",
        "school_days": ["0", "1", "2", "3", "4"],
    }
    values.update(changes)
    return values


def submit(client: FlaskClient, path: str, **changes: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, path), **fields(**changes)})


def test_an_admin_adds_a_school_and_it_is_listed_and_recorded(
    app: Flask, admin: FlaskClient
) -> None:
    response = submit(admin, "/admin/schools/new")
    assert response.status_code == 302
    oak = school(app, "Oak School")
    assert oak is not None
    assert (oak.timezone, oak.hours_open, oak.hours_close, oak.school_days) == (
        "America/Denver",
        "07:30",
        "15:45",
        "0,1,2,3,4",
    )
    listing = admin.get("/admin/schools").get_data(as_text=True)
    assert "Oak School" in listing and "07:30–15:45" in listing
    (entry,) = entries(app, "admin.school.create")
    assert json.loads(entry.details)["after"]["timezone"] == "America/Denver"


def test_any_known_time_zone_may_be_typed(app: Flask, admin: FlaskClient) -> None:
    response = submit(
        admin, "/admin/schools/new", timezone="other", timezone_other="America/Indiana/Knox"
    )
    assert response.status_code == 302
    oak = school(app, "Oak School")
    assert oak is not None and oak.timezone == "America/Indiana/Knox"
    page = admin.get(f"/admin/schools/{oak.public_id}").get_data(as_text=True)
    assert 'value="America/Indiana/Knox"' in page


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"timezone": "other", "timezone_other": "Mars/Base"}, "timezone_other", "Unknown time"),
        ({"timezone": "other", "timezone_other": ""}, "timezone_other", "Type the time zone"),
        ({"hours_open": "16:00", "hours_close": "08:00"}, "hours_close", "open before it closes"),
        ({"hours_open": "7am"}, "hours_open", "a time such as"),
        ({"school_days": []}, "school_days", "at least one school day"),
        ({"name": LINCOLN}, "name", "exists already"),
        ({"name": "Oak\u202eSchool"}, "name", "reverses or reorders text"),
    ],
)
def test_a_school_form_with_an_error_keeps_what_was_typed(
    app: Flask, admin: FlaskClient, changes: dict[str, Any], field: str, words: str
) -> None:
    response = submit(admin, "/admin/schools/new", **changes)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error"' in page and words in page
    assert 'value="555-0110"' in page
    if field != "hours_open":
        assert 'value="07:30"' in page or changes.get("hours_open")
    assert school(app, "Oak School") is None
    assert entries(app, "admin.school.create") == []


def test_an_admin_edits_a_school_and_the_change_is_recorded(app: Flask, admin: FlaskClient) -> None:
    lincoln = school(app, LINCOLN)
    assert lincoln is not None
    path = f"/admin/schools/{lincoln.public_id}"
    page = admin.get(path).get_data(as_text=True)
    assert f'value="{LINCOLN}"' in page
    response = submit(
        admin,
        path,
        name=LINCOLN,
        timezone=lincoln.timezone,
        hours_open="08:00",
        hours_close="16:00",
        school_days=["0", "1", "2", "3"],
    )
    assert response.status_code == 302
    changed = school(app, LINCOLN)
    assert changed is not None
    assert (changed.hours_open, changed.school_days) == ("08:00", "0,1,2,3")
    (entry,) = entries(app, "admin.school.update")
    details = json.loads(entry.details)
    assert details["before"]["hours"] == "07:00-17:00"
    assert details["after"]["hours"] == "08:00-16:00"
    assert admin.get("/admin/schools/" + "0" * 32).status_code == 404


def test_the_district_name_and_phone_are_saved(app: Flask, admin: FlaskClient) -> None:
    token = csrf_token(admin, "/admin/schools")
    empty = admin.post(
        "/admin/schools/district",
        data={"csrf_token": token, "district_name": "", "district_phone": "555-0199"},
    )
    page = empty.get_data(as_text=True)
    assert empty.status_code == 422
    assert 'id="district_name-error"' in page and 'value="555-0199"' in page
    saved = admin.post(
        "/admin/schools/district",
        data={"csrf_token": token, "district_name": "North District", "district_phone": "555-0199"},
    )
    assert saved.status_code == 302
    with database(app).session_factory() as session:
        row = session.scalar(select(District))
        assert row is not None and (row.name, row.office_phone) == ("North District", "555-0199")
    assert entries(app, "admin.district.update")
