"""Alert routing in the browser's forms: contacts by level, escalation minutes, the district's
phones; the setup rules shared with the command line, errors next to their fields, and every
change on the audit log with the webhook secret masked."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.clock import now_utc
from kiosk.models import AuditEntry, Contact, District, OutboxMessage, School
from kiosk.protocol.routing import contacts_for
from kiosk.webdb import database
from tests.conftest import csrf_token, deliver, tap_at
from tests.test_policy import LINCOLN, login

SECRET = "s3cret-webhook-value"  # noqa: S105 - a test value


def admin(app: Flask) -> FlaskClient:
    return login(app, "admin@demo-district.example", "demo-password")


def school_path(app: Flask, name: str = LINCOLN) -> str:
    with database(app).session_factory() as session:
        public_id = session.scalar(select(School.public_id).where(School.name == name))
    return f"/admin/routing/{public_id}"


def post(client: FlaskClient, path: str, **fields: Any) -> Any:
    token = csrf_token(client, "/admin/")
    return client.post(path, data={"csrf_token": token, **fields})


def contact_named(app: Flask, name: str) -> Contact | None:
    with database(app).session_factory() as session:
        return session.scalar(select(Contact).where(Contact.name == name))


def changes(app: Flask, action: str) -> list[dict[str, Any]]:
    with database(app).session_factory() as session:
        rows = session.scalars(
            select(AuditEntry.details).where(AuditEntry.action == f"admin.{action}")
        ).all()
    return [json.loads(row) for row in rows]


def error_next_to(page: str, field: str) -> str:
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    assert match, f"no error next to {field}"
    return match.group(1)


def value_of(page: str, field: str) -> str:
    match = re.search(rf'id="{field}"[^>]*value="([^"]*)"', page) or re.search(
        rf'value="([^"]*)"[^>]*id="{field}"', page
    )
    assert match, f"no value for {field}"
    return match.group(1)


def test_an_admin_adds_a_contact_that_is_then_alerted_at_its_level(
    app: Flask, district: Any
) -> None:
    client = admin(app)
    page = school_path(app)
    assert "Dana Reyes" in client.get(page).get_data(as_text=True)
    response = post(
        client,
        f"{page}/contacts/new",
        name="Morgan Lee",
        level="2",
        channel="email",
        address="Morgan.Lee@District.test",
        phone="555-0199",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    shown = client.get(page).get_data(as_text=True)
    assert "Contact added: Morgan Lee." in shown
    level2 = shown[shown.index('id="level2"') : shown.index('id="level3"')]
    assert "Morgan Lee" in level2 and "morgan.lee@district.test" in level2
    [change] = changes(app, "contact.create")
    assert change["after"]["name"] == "Morgan Lee"
    assert change["after"]["level"] == 2
    with database(app).session_factory() as session:
        school = session.scalars(select(School).where(School.name == LINCOLN)).one()
        assert "Morgan Lee" in [c.name for c in contacts_for(session, school, 2, now_utc())]


def test_a_contact_with_a_mistake_comes_back_as_typed_with_the_reason_beside_the_field(
    app: Flask, district: Any
) -> None:
    client = admin(app)
    page = school_path(app)
    response = post(
        client,
        f"{page}/contacts/new",
        name="Morgan Lee",
        level="1",
        channel="email",
        address="not-an-address",
        phone="555-0199",
        places="bus",
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert error_next_to(body, "address") == "An email contact needs an email address."
    assert value_of(body, "name") == "Morgan Lee"
    assert value_of(body, "address") == "not-an-address"
    assert value_of(body, "phone") == "555-0199"
    assert re.search(r'checked[^>]*value="bus"|value="bus"[^>]*checked', body)
    assert contact_named(app, "Morgan Lee") is None
    # Characters that hide or reorder text are refused before any rule runs.
    response = post(
        client, f"{page}/contacts/new", name="Mor\u200bgan", channel="email", address="m@d.test"
    )
    assert response.status_code == 422
    assert "invisible character" in error_next_to(response.get_data(as_text=True), "name")


def test_a_webhook_secret_is_written_never_shown_and_masked_in_the_audit_log(
    app: Flask, district: Any
) -> None:
    client = admin(app)
    page = school_path(app)
    fields = {
        "name": "Office chat",
        "level": "1",
        "channel": "webhook",
        "address": "https://hooks.example.test/T000/B000/XXXX",
        "webhook_format": "slack",
    }
    response = post(client, f"{page}/contacts/new", **fields)
    assert response.status_code == 422
    assert error_next_to(response.get_data(as_text=True), "webhook_secret") == (
        "A webhook contact needs a shared secret."
    )
    # A secret typed into a form that comes back for another reason is not written back.
    response = post(
        client, f"{page}/contacts/new", **{**fields, "name": "", "webhook_secret": SECRET}
    )
    body = response.get_data(as_text=True)
    assert SECRET not in body
    assert "Type the secret again" in error_next_to(body, "webhook_secret")

    assert post(client, f"{page}/contacts/new", **fields, webhook_secret=SECRET).status_code == 302
    contact = contact_named(app, "Office chat")
    assert contact is not None and contact.webhook_secret == SECRET
    listing = client.get(page).get_data(as_text=True)
    assert SECRET not in listing and "XXXX" not in listing
    assert "secret (set)" in listing
    edit = f"{page}/contacts/{contact.id}"
    form = client.get(edit).get_data(as_text=True)
    assert SECRET not in form and "Webhook secret (set)" in form

    # Saved without a new secret, the old one stays; with one, it is replaced.
    renamed = {**fields, "name": "Office chat 2", "active": "y"}
    assert post(client, edit, **renamed).status_code == 302
    contact = contact_named(app, "Office chat 2")
    assert contact is not None and contact.webhook_secret == SECRET
    assert post(client, edit, **fields, webhook_secret="another-one", active="y").status_code == 302
    assert contact_named(app, "Office chat").webhook_secret == "another-one"  # type: ignore[union-attr]

    recorded = json.dumps(changes(app, "contact.create") + changes(app, "contact.update"))
    assert SECRET not in recorded and "another-one" not in recorded and "XXXX" not in recorded
    updates = changes(app, "contact.update")
    assert updates[0] == {"before": {"name": "Office chat"}, "after": {"name": "Office chat 2"}}
    assert updates[1]["after"] == {"name": "Office chat", "webhook_secret": "(changed)"}


def test_escalation_minutes_are_checked_kept_as_typed_and_recorded(
    app: Flask, district: Any
) -> None:
    client = admin(app)
    page = school_path(app)
    response = post(
        client,
        f"{page}/escalation",
        level2_after_minutes="12",
        level3_after_minutes="8",
        realert_minutes="5",
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert error_next_to(body, "level3_after_minutes") == "Level 3 must come after level 2."
    assert value_of(body, "level2_after_minutes") == "12"
    assert value_of(body, "level3_after_minutes") == "8"
    response = post(
        client,
        f"{page}/escalation",
        level2_after_minutes="2",
        level3_after_minutes="x",
        realert_minutes="500",
    )
    body = response.get_data(as_text=True)
    assert value_of(body, "level3_after_minutes") == "x"
    assert "Between 1 and 120 minutes." in error_next_to(body, "realert_minutes")
    with database(app).session_factory() as session:
        school = session.scalars(select(School).where(School.name == LINCOLN)).one()
        assert (school.level2_after_minutes, school.level3_after_minutes) == (3, 10)
    assert changes(app, "routing.update") == []

    response = post(
        client,
        f"{page}/escalation",
        level2_after_minutes="2",
        level3_after_minutes="6",
        realert_minutes="4",
    )
    assert response.status_code == 302
    assert "Escalation times saved." in client.get(page).get_data(as_text=True)
    [change] = changes(app, "routing.update")
    assert change == {
        "before": {"level2_after_minutes": 3, "level3_after_minutes": 10, "realert_minutes": 5},
        "after": {"level2_after_minutes": 2, "level3_after_minutes": 6, "realert_minutes": 4},
    }


def test_removing_a_contact_keeps_the_history_of_one_that_was_alerted(
    app: Flask, district: Any
) -> None:
    client = admin(app)
    page = school_path(app)
    post(
        client,
        f"{page}/contacts/new",
        name="Never alerted",
        level="3",
        channel="email",
        address="n@d.test",
    )
    fresh = contact_named(app, "Never alerted")
    assert fresh is not None
    tap_at(app)
    deliver(app)
    dana = contact_named(app, "Dana Reyes")
    assert dana is not None

    said = []
    for contact in (fresh, dana):
        response = post(client, f"{page}/contacts/{contact.id}/remove")
        assert response.status_code == 302
        said.append(client.get(page).get_data(as_text=True))
    assert "Contact removed: Never alerted." in said[0]
    assert "Dana Reyes is no longer alerted." in said[1]
    assert contact_named(app, "Never alerted") is None
    kept = contact_named(app, "Dana Reyes")
    assert kept is not None and kept.active is False
    with database(app).session_factory() as session:
        assert session.scalars(
            select(OutboxMessage.contact_id).where(OutboxMessage.contact_id == dana.id)
        ).all()
        school = session.scalars(select(School).where(School.name == LINCOLN)).one()
        assert dana.id not in [c.id for c in contacts_for(session, school, 1, now_utc())]
    assert changes(app, "contact.delete")[0]["after"] == {}
    assert changes(app, "contact.deactivate")[0] == {
        "before": {"active": True},
        "after": {"active": False},
    }


def test_the_district_phones_and_the_hotline(app: Flask, district: Any) -> None:
    client = admin(app)
    response = post(client, "/admin/routing/district", office_phone="555-0100", hotline_enabled="y")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "turn it on" in error_next_to(body, "hotline_phone")
    assert value_of(body, "office_phone") == "555-0100"
    response = post(
        client,
        "/admin/routing/district",
        office_phone="555-0100",
        hotline_phone="555-0111",
        hotline_enabled="y",
    )
    assert response.status_code == 302
    with database(app).session_factory() as session:
        row = session.scalars(select(District)).one()
        assert (row.office_phone, row.hotline_phone, row.hotline_enabled) == (
            "555-0100",
            "555-0111",
            True,
        )
    [change] = changes(app, "district.phones")
    assert change["after"] == {
        "office_phone": "555-0100",
        "hotline_phone": "555-0111",
        "hotline_enabled": True,
    }


def test_a_contact_of_another_school_is_not_found_here(app: Flask, district: Any) -> None:
    client = admin(app)
    dana = contact_named(app, "Dana Reyes")
    assert dana is not None
    other = school_path(app, "Riverside Middle School")
    assert client.get(f"{other}/contacts/{dana.id}").status_code == 404
