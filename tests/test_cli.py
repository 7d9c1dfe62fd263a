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


def test_people_are_invited_listed_granted_disabled_and_imported_from_the_command_line(
    app: Flask, district: Any, tmp_path: Any
) -> None:
    lincoln = "Lincoln Elementary School"
    result = run(
        app,
        "users",
        "invite",
        "--name",
        "Robin Park",
        "--email",
        "Robin.Park@district.test",
        "--grant",
        f"designee:{lincoln}",
        "--grant",
        "reviewer",
    )
    assert result.exit_code == 0, result.output
    token = re.search(r"/welcome/(\S+)", result.output).group(1)
    assert "works once" in result.output and "emailed to robin.park@district.test" in result.output
    assert app.test_client().get(f"/welcome/{token}").status_code == 200
    listed = run(app, "users", "list", "--school", lincoln, "--role", "designee").output
    assert "robin.park@district.test" in listed and "Reviewer (district-wide)" in listed
    assert "admin@demo-district.example" not in listed

    result = run(app, "users", "grant", "robin.park@district.test", "counsel")
    assert result.exit_code == 0, result.output
    result = run(app, "users", "grant", "robin.park@district.test", "designee")
    assert result.exit_code != 0 and "Designee is held for one school" in result.output
    result = run(app, "users", "revoke", "robin.park@district.test", "counsel")
    assert result.exit_code == 0, result.output
    result = run(app, "users", "disable", "robin.park@district.test")
    assert result.exit_code == 0, result.output
    assert app.test_client().get(f"/welcome/{token}").status_code == 404
    assert "DISABLED" in run(app, "users", "list").output
    result = run(app, "users", "reset-link", "robin.park@district.test")
    assert result.exit_code != 0 and "disabled" in result.output
    assert run(app, "users", "enable", "robin.park@district.test").exit_code == 0
    result = run(app, "users", "reset-link", "robin.park@district.test")
    assert result.exit_code == 0 and "/welcome/" in result.output
    result = run(app, "users", "disable", "nobody@district.test")
    assert result.exit_code != 0 and "no person with email" in result.output

    csv_file = tmp_path / "people.csv"
    csv_file.write_text(
        "name,email,role,school\n"
        f"Pat Lee,pat.lee@district.test,front_desk,{lincoln}\n"
        "Sam Ortiz,sam.ortiz@district.test,admin,\n"
    )
    with database(app).session_factory() as session:
        before = len(session.scalars(select(User)).all())
    dry = run(app, "users", "import", str(csv_file), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "line 2: add Pat Lee <pat.lee@district.test>" in dry.output
    assert "nothing written" in dry.output
    with database(app).session_factory() as session:
        assert len(session.scalars(select(User)).all()) == before
    done = run(app, "users", "import", str(csv_file))
    assert done.exit_code == 0, done.output
    assert done.output.count("/welcome/") == 2
    with database(app).session_factory() as session:
        assert len(session.scalars(select(User)).all()) == before + 2
    bad = tmp_path / "bad.csv"
    bad.write_text("name,email,role,school\nLee Kim,lee@district.test,counsel,Oak\n")
    result = run(app, "users", "import", str(bad))
    assert result.exit_code != 0
    assert "line 2: error: Counsel is district-wide" in result.output
    assert "nothing was written" in result.output


def test_scripts_list_show_import_and_approve(app: Flask, district: Any, tmp_path: Any) -> None:
    import json
    from datetime import date, timedelta

    from kiosk.models import AuditEntry, ScriptVersion
    from kiosk.protocol import scriptstore
    from tests.test_policy import create_user

    scriptstore._packs_by_id.clear()
    listing = run(app, "scripts", "list")
    assert listing.exit_code == 0, listing.output
    assert re.search(r"^1\s+draft\s+in use\s+Default script pack", listing.output, re.MULTILINE)
    shown = run(app, "scripts", "show", "1")
    assert shown.exit_code == 0
    data = json.loads(shown.output)
    assert data["status"] == "draft" and data["blocks"]
    assert "no script version 9" in run(app, "scripts", "show", "9").output

    # A file with a problem is refused with the reason, and nothing is stored.
    data["blocks"][0]["say"] = "You have to comply."
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    result = run(app, "scripts", "import", str(bad))
    assert result.exit_code != 0 and 'the word "comply" is not allowed' in result.output
    data["blocks"][0]["say"] = "Please wait here. The district office is being contacted."
    good = tmp_path / "pack.json"
    good.write_text(json.dumps(data), encoding="utf-8")
    result = run(app, "scripts", "import", str(good))
    assert result.exit_code == 0, result.output
    assert "stored version 2 (draft" in result.output
    assert "already stored as version 2" in run(app, "scripts", "import", str(good)).output

    # Only a district-wide counsel account approves.
    due = (date.today() + timedelta(days=30)).isoformat()
    result = run(app, "scripts", "approve", "2", "--by", "admin@demo-district.example")
    assert result.exit_code != 0 and "only a district-wide counsel account" in result.output
    create_user(app, "counsel@district.test", "counsel")
    args = ["scripts", "approve", "2", "--by", "counsel@district.test", "--review-due", due]
    result = run(app, *args)
    assert result.exit_code == 0, result.output
    assert f"approved version 2; review due {due}" in result.output
    assert "already approved" in run(app, *args).output
    listing = run(app, "scripts", "list").output
    assert re.search(rf"^2\s+approved\s+in use\s+.*Test counsel.*{due}", listing, re.MULTILINE)
    with database(app).session_factory() as session:
        version = session.get(ScriptVersion, 2)
        assert version is not None and version.status == "approved" and version.active
        actions = [
            (e.actor, e.action)
            for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
            if e.action.startswith("admin.script.")
        ]
    assert actions == [("cli", "admin.script.create"), ("cli", "admin.script.approve")]
    scriptstore._packs_by_id.clear()


def test_users_create_keeps_desk_and_designee_roles_to_a_school_and_the_others_district_wide(
    app: Flask,
) -> None:
    run(app, "schools", "create", "--name", "Oak School", "--timezone", "UTC")
    env = {"KIOSK_NEW_PASSWORD": "long-password-here"}
    result = run(
        app,
        "users",
        "create",
        "--name",
        "A",
        "--email",
        "a@district.test",
        "--role",
        "designee",
        env=env,
    )
    assert result.exit_code != 0 and "choose the school" in result.output
    result = run(
        app,
        "users",
        "create",
        "--name",
        "B",
        "--email",
        "b@district.test",
        "--role",
        "counsel",
        "--school",
        "Oak School",
        env=env,
    )
    assert result.exit_code != 0 and "district-wide: leave the school empty" in result.output
    result = run(
        app,
        "users",
        "create",
        "--name",
        "C",
        "--email",
        "c@district.test",
        "--role",
        "counsel",
        env=env,
    )
    assert result.exit_code == 0, result.output
