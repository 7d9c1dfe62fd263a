"""Escalation with a controllable clock: level 2, level 3, reminders, restarts, exigency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk import clock
from kiosk.localtime import is_school_hours
from kiosk.models import Encounter, OutboxMessage, School
from kiosk.notify.links import Links
from kiosk.protocol.escalation import escalate_due
from kiosk.protocol.routing import contacts_for
from kiosk.webdb import database
from tests.conftest import csrf_token, tap_start, the_encounter
from tests.test_cli import run
from tests.test_office import login


def escalate(app: Flask, at: datetime) -> int:
    return escalate_due(database(app).session_factory, Links.from_settings(app.config), at)


def sent_to(app: Flask) -> list[tuple[str, int, int, str]]:
    with database(app).session_factory() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [(r.kind, r.level, r.sequence, r.recipient.split("@")[0]) for r in rows]


def add_level3(app: Flask) -> None:
    result = run(
        app,
        "contacts",
        "add",
        "--school",
        "Lincoln Elementary School",
        "--level",
        "3",
        "--name",
        "Superintendent",
        "--email",
        "superintendent@demo-district.example",
    )
    assert result.exit_code == 0, result.output


def test_unacknowledged_alert_climbs_every_level_then_reminds(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    add_level3(app)
    tap_start(kiosk_client)
    t0 = the_encounter(app).started_at
    assert escalate(app, t0 + timedelta(minutes=2, seconds=59)) == 0
    assert escalate(app, t0 + timedelta(minutes=3)) == 1
    assert sent_to(app)[-1] == ("escalation", 2, 0, "morgan.blake")
    assert escalate(app, t0 + timedelta(minutes=9)) == 0
    assert escalate(app, t0 + timedelta(minutes=10)) == 1
    assert sent_to(app)[-1] == ("escalation", 3, 0, "superintendent")
    assert escalate(app, t0 + timedelta(minutes=15)) == 1
    reminders = [row for row in sent_to(app) if row[0] == "realert"]
    assert sorted(r[3] for r in reminders) == ["dana.reyes", "morgan.blake", "superintendent"]
    assert escalate(app, t0 + timedelta(minutes=20)) == 1
    assert len([row for row in sent_to(app) if row[0] == "realert"]) == 6
    with database(app).session_factory() as session:
        encounter = session.scalars(select(Encounter)).one()
        assert encounter.escalation_level == 3 and encounter.realerts == 2
        kinds = [e.kind for e in encounter.events]
    assert kinds.count("escalated") == 2 and kinds.count("realerted") == 2


def test_running_twice_at_the_same_moment_sends_nothing_twice(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    tap_start(kiosk_client)
    t0 = the_encounter(app).started_at
    at = t0 + timedelta(minutes=3)
    assert escalate(app, at) == 1
    assert escalate(app, at) == 0
    assert [row[0] for row in sent_to(app)] == ["alert", "escalation"]


def test_restart_in_the_middle_of_an_escalation(make_app: Any, district: Any, app: Flask) -> None:
    from tests.conftest import enroll_client

    add_level3(app)
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    t0 = the_encounter(app).started_at
    escalate(app, t0 + timedelta(minutes=3))
    database(app).engine.dispose()  # the process goes away

    restarted = make_app()  # a new process: a new engine, nothing kept in memory
    assert escalate(restarted, t0 + timedelta(minutes=3, seconds=30)) == 0
    assert escalate(restarted, t0 + timedelta(minutes=10)) == 1
    assert [row[:2] for row in sent_to(restarted)] == [
        ("alert", 1),
        ("escalation", 2),
        ("escalation", 3),
    ]


def test_acknowledgement_stops_escalation(app: Flask, kiosk_client: FlaskClient) -> None:
    tap_start(kiosk_client)
    encounter = the_encounter(app)
    dana = login(app, "dana.reyes@demo-district.example")
    page = f"/office/encounters/{encounter.public_id}"
    dana.post(f"{page}/acknowledge", data={"csrf_token": csrf_token(dana, page)})
    t0 = encounter.started_at
    for minutes in (3, 10, 15, 60):
        assert escalate(app, t0 + timedelta(minutes=minutes)) == 0
    assert [row[0] for row in sent_to(app)] == ["alert"]


def mid_morning_offset(zone: str) -> float:
    """Seconds to shift the clock so that it is 10:00 today at the school: a test that moves
    the clock on a few minutes then never crosses the school's midnight (after which the
    desk would first ask whether it is still the same visit)."""
    here = datetime.now(UTC).astimezone(ZoneInfo(zone))
    return (here.replace(hour=10, minute=0, second=0, microsecond=0) - here).total_seconds()


def test_desk_sees_countdown_and_numbers_from_the_first_missed_window(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    assert run(app, "schools", "hotline", "--phone", "(555) 010-0999", "--on").exit_code == 0
    base = mid_morning_offset("America/New_York")  # Lincoln Elementary's zone
    clock.set_offset(base)
    try:
        tap_start(kiosk_client)
        status = kiosk_client.get("/desk/status.json").get_json()
        assert status["escalation"]["missed"] is False
        t0 = the_encounter(app).started_at
        escalate(app, t0 + timedelta(minutes=3))
        clock.set_offset(base + 3 * 60 + 5)
        status = kiosk_client.get("/desk/status.json").get_json()
        page = kiosk_client.get("/desk/").get_data(as_text=True)
    finally:
        clock.set_offset(0)
    escalation = status["escalation"]
    assert escalation["missed"] is True and escalation["level"] == 2
    assert 410 <= escalation["seconds_to_next"] <= 420  # level 3 is due at 10 minutes
    assert [n["label"] for n in escalation["numbers"]] == [
        "School office",
        "District office",
        "Rapid-response hotline",
    ]
    assert "(555) 010-0999" in page and "No acknowledgement yet." in page


def test_declared_exigency_alerts_levels_one_and_two_at_once(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    tap_start(kiosk_client)
    token = csrf_token(kiosk_client, "/desk/exigency")
    kiosk_client.post(
        "/desk/exigency",
        data={
            "csrf_token": token,
            "exigency": "yes",
            "exigency_reason": "They said someone is in danger.",
        },
    )
    exigency = [row for row in sent_to(app) if row[0] == "exigency"]
    assert sorted(r[3] for r in exigency) == ["dana.reyes", "morgan.blake"]
    encounter = the_encounter(app)
    assert encounter.escalation_level == 2
    # Saving the step again sends nothing more.
    token = csrf_token(kiosk_client, "/desk/exigency")
    kiosk_client.post("/desk/exigency", data={"csrf_token": token, "exigency": "yes"})
    assert len([row for row in sent_to(app) if row[0] == "exigency"]) == 2
    with database(app).session_factory() as session:
        subjects = session.scalars(
            select(OutboxMessage.subject).where(OutboxMessage.kind == "exigency")
        ).all()
    assert all(subject.startswith("Emergency declared") for subject in subjects)


def test_after_hours_contact_takes_level_one(app: Flask, district: Any) -> None:
    result = run(
        app,
        "contacts",
        "add",
        "--school",
        "Lincoln Elementary School",
        "--name",
        "On-call administrator",
        "--email",
        "oncall@demo-district.example",
        "--after-hours",
    )
    assert result.exit_code == 0, result.output
    with database(app).session_factory() as session:
        school = session.scalar(select(School).where(School.name == "Lincoln Elementary School"))
        # Lincoln is in New York: 14:00 UTC on a Wednesday is 09:00 or 10:00 local.
        school_day = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)
        night = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
        sunday = datetime(2026, 3, 8, 16, 0, tzinfo=UTC)
        assert is_school_hours(school, school_day)
        assert not is_school_hours(school, night) and not is_school_hours(school, sunday)
        day = [c.name for c in contacts_for(session, school, 1, school_day)]
        after = [c.name for c in contacts_for(session, school, 1, night)]
        weekend = [c.name for c in contacts_for(session, school, 1, sunday)]
    assert day == ["Dana Reyes"]
    assert after == weekend == ["On-call administrator"]


def test_routing_command_sets_windows_and_hours(app: Flask, district: Any) -> None:
    result = run(
        app,
        "schools",
        "routing",
        "--school",
        "Lincoln Elementary School",
        "--level2-after",
        "2",
        "--level3-after",
        "6",
        "--realert-every",
        "4",
        "--hours",
        "06:30-15:00",
        "--days",
        "0,1,2,3,4,5",
    )
    assert result.exit_code == 0, result.output
    with database(app).session_factory() as session:
        school = session.scalar(select(School).where(School.name == "Lincoln Elementary School"))
        assert (
            school.level2_after_minutes,
            school.level3_after_minutes,
            school.realert_minutes,
        ) == (2, 6, 4)
        assert (school.hours_open, school.hours_close, school.school_days) == (
            "06:30",
            "15:00",
            "0,1,2,3,4,5",
        )
    bad = run(
        app, "schools", "routing", "--school", "Lincoln Elementary School", "--hours", "17:00-07:00"
    )
    assert bad.exit_code != 0 and "07:00-17:00" in bad.output
