"""A kiosk that goes quiet in school hours: the admins are emailed once per silence
(through the outbox, to a real SMTP server), and the kiosks page shows it. The clock is
moved, not waited for."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import select

from kiosk import clock
from kiosk.clock import now_utc
from kiosk.delivery import hooks_for
from kiosk.models import OutboxMessage
from kiosk.notify.channels import senders_from_settings
from kiosk.notify.deliverer import Deliverer
from kiosk.notify.sending import Policy
from kiosk.protocol import checkins
from kiosk.webdb import database
from tests.conftest import SmtpSink, deliver, enroll_client, smtp_settings
from tests.test_policy import LINCOLN, create_user, login
from tests.test_races import together

NEW_YORK = ZoneInfo("America/New_York")  # Lincoln's zone; hours 07:00-17:00, Monday-Friday
ADMIN = "admin@demo-district.example"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in Lincoln's time: day is the day of December 2026 (1 is a Tuesday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=NEW_YORK)


@contextlib.contextmanager
def moved_clock() -> Iterator[Any]:
    def move(moment: datetime) -> datetime:
        clock.set_offset(0)
        clock.set_offset((moment - now_utc()).total_seconds())
        return now_utc()

    try:
        yield move
    finally:
        clock.set_offset(0)


def round_at(app: Flask, now: datetime) -> None:
    """One round as the deliverer runs it: escalation and the quiet-kiosk check, then send."""
    hooks_for(app).escalate(now)
    deliver(app, now)


def silence_mail(sink: SmtpSink) -> list[Any]:
    return [m for m in sink.messages if "Kiosk not checking in" in str(m["Subject"])]


def test_a_quiet_kiosk_is_reported_once_per_silence(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server), CHECKIN_ALERT_MINUTES=60)
    create_user(app, "second.admin@district.test", "admin")
    create_user(app, "designee@district.test", "designee", LINCOLN)
    with moved_clock() as move:
        move(at(1, 9, 0))
        kiosk, _ = enroll_client(app, LINCOLN)
        assert kiosk.get("/desk/").status_code == 200

        round_at(app, move(at(1, 9, 59)))
        assert silence_mail(smtp_server) == []

        round_at(app, move(at(1, 10, 1)))
        mail = silence_mail(smtp_server)
        assert sorted(str(m["To"]) for m in mail) == [ADMIN, "second.admin@district.test"]
        body = mail[0].get_payload(decode=True).decode()
        assert "Front desk" in str(mail[0]["Subject"]) and LINCOLN in str(mail[0]["Subject"])
        assert "has not checked in since Tuesday 1 December 2026, 09:00" in body
        assert "http://kiosk.test/check" in body

        admin = login(app, ADMIN, "demo-password")
        page = admin.get("/admin/kiosks").get_data(as_text=True)
        assert "Not checking in" in page and "1 kiosk not checking in" in page

        # Once per silence: later rounds (in this process or another) send nothing more.
        round_at(app, move(at(1, 10, 30)))
        round_at(app, move(at(1, 13, 0)))
        assert len(silence_mail(smtp_server)) == 2

        # The kiosk is used again: it checks in, and the page no longer marks it.
        move(at(1, 13, 5))
        assert kiosk.get("/desk/status.json").status_code == 200
        assert "Not checking in" not in admin.get("/admin/kiosks").get_data(as_text=True)

        # A new silence is a new message.
        round_at(app, move(at(1, 14, 6)))
        assert len(silence_mail(smtp_server)) == 4
    with database(app).session_factory() as session:
        kinds = session.scalars(select(OutboxMessage.kind)).all()
        assert set(kinds) == {"kiosk_silent"}  # nothing else was sent


def test_silence_counts_school_hours_only(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server), CHECKIN_ALERT_MINUTES=60)
    with moved_clock() as move:
        move(at(4, 16, 30))  # Friday, half an hour before closing
        enroll_client(app, LINCOLN)
        round_at(app, move(at(5, 12, 0)))  # Saturday
        round_at(app, move(at(7, 7, 29)))  # Monday: 30 + 29 minutes of school hours
        assert silence_mail(smtp_server) == []
        round_at(app, move(at(7, 7, 31)))
        assert len(silence_mail(smtp_server)) == 1


def test_an_idle_kiosk_that_polls_is_not_reported(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    """The idle screen's poll checks the kiosk in, so a kiosk left on its start screen is
    never reported; a revoked kiosk is not reported either."""
    app = make_app(**smtp_settings(smtp_server), CHECKIN_ALERT_MINUTES=60)
    with moved_clock() as move:
        move(at(1, 9, 0))
        idle, _ = enroll_client(app, LINCOLN)
        gone, gone_id = enroll_client(app, LINCOLN)
        page = idle.get("/desk/").get_data(as_text=True)
        assert 'data-idle-poll-url="/desk/status.json"' in page
        for minute in range(5, 125, 5):
            move(at(1, 9 + minute // 60, minute % 60))
            assert idle.get("/desk/status.json").get_json() == {"open": False}
        result = app.test_cli_runner().invoke(args=["kiosks", "revoke", str(gone_id)])
        assert result.exit_code == 0
        round_at(app, move(at(1, 11, 5)))
        assert silence_mail(smtp_server) == []


def test_the_running_deliverer_reports_a_quiet_kiosk(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    """The check runs where escalation runs: in the background deliverer."""
    app = make_app(**smtp_settings(smtp_server), CHECKIN_ALERT_MINUTES=60)
    with moved_clock() as move:
        move(at(1, 9, 0))
        enroll_client(app, LINCOLN)
        move(at(1, 10, 30))
        deliverer = Deliverer(
            database(app).session_factory,
            senders_from_settings(app.config),
            policy=Policy(),
            poll_seconds=0.1,
            hooks=hooks_for(app),
        )
        deliverer.start()
        try:
            assert smtp_server.received.wait(10.0)
        finally:
            deliverer.stop()
    assert [str(m["To"]) for m in silence_mail(smtp_server)] == [ADMIN]


def test_two_processes_checking_at_once_send_one_email_each_silence(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server), CHECKIN_ALERT_MINUTES=60)
    with moved_clock() as move:
        move(at(1, 9, 0))
        enroll_client(app, LINCOLN)
        now = move(at(1, 10, 30))
        factory = database(app).session_factory
        told = together(
            lambda: checkins.alert_silent_kiosks(factory, "http://kiosk.test", now, 60),
            lambda: checkins.alert_silent_kiosks(factory, "http://kiosk.test", now, 60),
        )
        assert sorted(told) == [0, 1]
        deliver(app, now)
    assert [str(m["To"]) for m in silence_mail(smtp_server)] == [ADMIN]
