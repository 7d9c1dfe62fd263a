"""The command line a district administrator uses to set up schools, people and kiosks."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from sqlalchemy import select

from kiosk.models import AuditEntry, Contact, District, Kiosk, RoleGrant, School, User
from kiosk.webdb import database


def run(app: Flask, *args: str, **options: Any) -> Any:
    return app.test_cli_runner().invoke(args=list(args), **options)


def test_schools_contacts_users_and_kiosk_enrollment(app: Flask) -> None:
    assert (
        run(app, "schools", "district", "--name", "North District", "--phone", "555-0100").exit_code
        == 0
    )
    result = run(
        app,
        "schools",
        "create",
        "--name",
        "Oak School",
        "--timezone",
        "America/Denver",
        "--phone",
        "555-0110",
    )
    assert result.exit_code == 0, result.output
    result = run(
        app,
        "contacts",
        "add",
        "--school",
        "Oak School",
        "--name",
        "Dana",
        "--email",
        "Dana@District.test",
        "--phone",
        "555-0120",
    )
    assert result.exit_code == 0, result.output
    result = run(
        app,
        "users",
        "create",
        "--name",
        "Pat",
        "--role",
        "front_desk",
        "--school",
        "Oak School",
        "--pin",
        input="123456\n123456\n",
    )
    assert result.exit_code == 0, result.output
    result = run(
        app,
        "users",
        "create",
        "--name",
        "Dana",
        "--email",
        "dana@district.test",
        "--role",
        "designee",
        "--school",
        "Oak School",
        env={"KIOSK_NEW_PASSWORD": "long-password"},
    )
    assert result.exit_code == 0, result.output
    result = run(app, "kiosks", "enroll", "--school", "Oak School")
    assert result.exit_code == 0, result.output
    token = re.search(r"/enroll/(\S+)", result.output).group(1)
    with database(app).session_factory() as session:
        assert session.scalar(select(District)).office_phone == "555-0100"
        school = session.scalar(select(School).where(School.name == "Oak School"))
        assert school.timezone == "America/Denver"
        contact = session.scalar(select(Contact))
        assert (contact.address, contact.level) == ("dana@district.test", 1)
        assert len(session.scalars(select(RoleGrant)).all()) == 2
        pat = session.scalar(select(User).where(User.display_name == "Pat"))
        assert pat.pin_hash and "123456" not in pat.pin_hash
        kiosk = session.scalar(select(Kiosk))
        assert kiosk.enrollment_token_hash and token not in kiosk.enrollment_token_hash
    assert app.test_client().get(f"/enroll/{token}").status_code == 200


def test_bad_cli_input_is_refused_with_a_message(app: Flask) -> None:
    result = run(app, "schools", "create", "--name", "X", "--timezone", "Mars/Base")
    assert result.exit_code != 0 and "unknown time zone" in result.output
    result = run(app, "schools", "create", "--name", "Evil\r\nBcc: x", "--timezone", "UTC")
    assert result.exit_code != 0 and "one line" in result.output
    result = run(
        app, "contacts", "add", "--school", "Nowhere", "--name", "A", "--email", "a@b.test"
    )
    assert result.exit_code != 0 and "no school named" in result.output
    result = run(app, "users", "create", "--name", "P", "--role", "front_desk", "--pin", "123456")
    assert result.exit_code != 0 and "not taken on the command line" in result.output
    result = run(
        app, "users", "create", "--name", "P", "--role", "front_desk", "--pin", input="12ab\n12ab\n"
    )
    assert result.exit_code != 0 and "six digits" in result.output


def test_demo_seeds_once_and_prints_links(make_app: Any) -> None:
    app = make_app(DEMO=True)
    first = run(app, "demo")
    assert first.exit_code == 0, first.output
    assert "Demo district created" in first.output
    assert first.output.count("/enroll/") == 2
    assert "/demo/mail" in first.output
    second = run(app, "demo")
    assert "Demo district created" not in second.output
    with database(app).session_factory() as session:
        assert len(session.scalars(select(School)).all()) == 2
        assert len(session.scalars(select(Kiosk)).all()) == 2  # renewed, not added


def test_demo_refuses_outside_demo_mode(make_app: Any) -> None:
    app = make_app(DEMO=False, SMTP_HOST="127.0.0.1")
    result = run(app, "demo")
    assert result.exit_code != 0
    assert "only in demo mode" in result.output
    with database(app).session_factory() as session:
        assert session.scalars(select(School)).all() == []


def test_contacts_can_be_routed_to_offsite_places(app: Flask) -> None:
    run(app, "schools", "create", "--name", "Oak School", "--timezone", "America/Denver")
    result = run(
        app,
        "contacts",
        "add",
        "--school",
        "Oak School",
        "--name",
        "Transportation",
        "--email",
        "transport@district.test",
        "--places",
        "bus, field_trip,bus",
    )
    assert result.exit_code == 0, result.output
    assert "for bus, field_trip" in result.output
    with database(app).session_factory() as session:
        contact = session.scalars(select(Contact)).one()
    assert contact.places == "bus,field_trip"
    for places, message in (
        ("parking_lot", "unknown place parking_lot"),
        ("bus,moon", "unknown place moon"),
    ):
        result = run(
            app,
            "contacts",
            "add",
            "--school",
            "Oak School",
            "--name",
            "X",
            "--email",
            "x@district.test",
            "--places",
            places,
        )
        assert result.exit_code != 0 and message in result.output
    result = run(
        app,
        "contacts",
        "add",
        "--school",
        "Oak School",
        "--name",
        "Y",
        "--email",
        "y@district.test",
        "--places",
        "bus",
        "--after-hours",
    )
    assert result.exit_code != 0 and "not both" in result.output


def test_contacts_are_listed_and_removed_keeping_what_was_alerted(app: Flask) -> None:
    from tests.conftest import deliver, tap_at

    run(app, "schools", "create", "--name", "Lincoln Elementary School", "--timezone", "UTC")
    run(app, "schools", "create", "--name", "Oak School", "--timezone", "America/Denver")
    for school, name, level in (
        ("Lincoln Elementary School", "Dana", "1"),
        ("Lincoln Elementary School", "Kim", "3"),
        ("Oak School", "Lee", "1"),
    ):
        result = run(
            app,
            "contacts",
            "add",
            "--school",
            school,
            "--name",
            name,
            "--level",
            level,
            "--email",
            f"{name.lower()}@district.test",
        )
        assert result.exit_code == 0, result.output
    run(
        app,
        "contacts",
        "add",
        "--school",
        "Oak School",
        "--name",
        "Chat",
        "--channel",
        "webhook",
        "--address",
        "https://hooks.test/T0/secret-path",
        "--webhook-secret",
        "hush",
    )
    listed = run(app, "contacts", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[0].split() == [
        "ID",
        "SCHOOL",
        "ROUTED",
        "NAME",
        "CHANNEL",
        "ADDRESS",
        "ACTIVE",
    ]
    assert "secret-path" not in listed.output and "hush" not in listed.output
    assert "https://hooks.test/…" in listed.output
    oak = run(app, "contacts", "list", "--school", "Oak School").output
    assert "Lee" in oak and "Dana" not in oak

    tap_at(app)
    deliver(app)
    with database(app).session_factory() as session:
        ids = {c.name: c.id for c in session.scalars(select(Contact))}
    result = run(app, "contacts", "remove", str(ids["Dana"]))
    assert result.exit_code == 0, result.output
    assert "deactivated" in result.output and "history is kept" in result.output
    result = run(app, "contacts", "remove", str(ids["Kim"]))
    assert result.exit_code == 0, result.output
    assert f"contact {ids['Kim']} deleted: Kim" in result.output
    listed = run(app, "contacts", "list", "--school", "Lincoln Elementary School").output
    assert "Kim" not in listed
    assert re.search(r"Dana\s+email\s+dana@district.test\s+no \(removed\)", listed)
    with database(app).session_factory() as session:
        recorded = session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.details).where(
                AuditEntry.subject == f"contact:{ids['Chat']}"
            )
        ).all()
    [(actor, action, details)] = recorded
    assert (actor, action) == ("cli", "admin.contact.create")
    assert "hush" not in details and "secret-path" not in details
    assert '"webhook_secret":"(changed)"' in details
    result = run(app, "contacts", "remove", "999")
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1] == "Error: no contact '999' (see `contacts list`)"
    result = run(app, "contacts", "list", "--school", "Nowhere")
    assert result.exit_code != 0 and "no school named 'Nowhere'" in result.output


def test_a_test_alert_from_the_command_line_names_who_it_went_to(app: Flask) -> None:
    run(app, "schools", "create", "--name", "Oak School", "--timezone", "America/Denver")
    result = run(app, "alerts", "test", "--school", "Oak School")
    assert result.exit_code != 0
    assert "nobody is set up at level 1 for Oak School" in result.output
    run(app, "contacts", "add", "--school", "Oak School", "--name", "Lee", "--email", "l@d.test")
    result = run(app, "alerts", "test", "--school", "Oak School")
    assert result.exit_code == 0, result.output
    assert "to 1 level-1 contact:" in result.output
    assert "  Lee, email l@d.test" in result.output
