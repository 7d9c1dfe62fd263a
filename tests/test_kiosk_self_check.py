"""The device check at /check: set up or not, for which school, does the server answer,
do messages go out. Any device may open it, so it says yes or no and nothing more."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from sqlalchemy import update

from kiosk.clock import now_utc
from kiosk.models import OutboxMessage
from kiosk.notify.leases import record_heartbeat
from kiosk.webdb import database
from tests.conftest import enroll_client, tap_start
from tests.test_policy import LINCOLN, RIVERSIDE

NOT_SET_UP = "No. This device is not set up as a kiosk."
GOING_OUT = "Going out normally."
DELAYED = "Delayed. Call the district office for anything urgent"


def deliverer_alive(app: Flask) -> None:
    record_heartbeat(database(app).session_factory, "test-deliverer", now_utc())


def main_words(page: str) -> list[str]:
    return re.findall(r"[a-z]+", page.lower().split("<main", 1)[1])


def test_a_device_that_is_not_a_kiosk_is_told_so_and_nothing_else(
    app: Flask, district: dict[str, Any]
) -> None:
    deliverer_alive(app)
    page = app.test_client().get("/check")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert NOT_SET_UP in text
    assert "Yes, this page loaded." in text
    assert GOING_OUT in text
    # No school, person, address or count reaches a device that is not a kiosk.
    for other in (LINCOLN, RIVERSIDE, "@", "waiting"):
        assert other not in text.split("<main", 1)[1]
    assert 'href="/enroll"' in text
    assert 'src="/static/check.js"' in text


def test_a_kiosk_sees_its_school_and_reaches_the_check_from_its_start_screen(
    app: Flask, district: dict[str, Any]
) -> None:
    deliverer_alive(app)
    kiosk, _ = enroll_client(app, LINCOLN)
    idle = kiosk.get("/desk/").get_data(as_text=True)
    assert '<a href="/check">Check this device</a>' in idle
    text = kiosk.get("/check").get_data(as_text=True)
    assert f"Yes, for {LINCOLN}" in text
    assert RIVERSIDE not in text
    assert 'href="/desk/"' in text  # back to the start screen
    for word in ("alert", "agent", "agents", "ice", "immigration", "error", "revoked"):
        assert word not in main_words(text)


def test_a_revoked_kiosk_is_told_it_is_no_longer_set_up(
    app: Flask, district: dict[str, Any]
) -> None:
    kiosk, kiosk_id = enroll_client(app, LINCOLN)
    assert app.test_cli_runner().invoke(args=["kiosks", "revoke", str(kiosk_id)]).exit_code == 0
    text = kiosk.get("/check").get_data(as_text=True)
    assert "No. This device is no longer set up." in text
    assert LINCOLN not in text.split("<main", 1)[1]


def test_messages_are_delayed_without_a_deliverer_or_after_a_failed_alert(
    app: Flask, district: dict[str, Any]
) -> None:
    client = app.test_client()
    assert DELAYED in client.get("/check").get_data(as_text=True)  # no deliverer yet
    deliverer_alive(app)
    assert GOING_OUT in client.get("/check").get_data(as_text=True)
    kiosk, _ = enroll_client(app, LINCOLN)
    tap_start(kiosk)
    with database(app).session_factory() as session, session.begin():
        session.execute(
            update(OutboxMessage).values(status="failed", failed_at=now_utc(), attempts=5)
        )
    assert DELAYED in client.get("/check").get_data(as_text=True)
    assert client.get("/check.json").get_json()["messages"] == "delayed"


def test_the_json_the_page_times_says_yes_or_no_only(app: Flask, district: dict[str, Any]) -> None:
    deliverer_alive(app)
    answer = app.test_client().get("/check.json")
    assert answer.status_code == 200
    assert answer.get_json() == {"server": "ok", "messages": "ok", "set_up": False}
    assert answer.headers["Cache-Control"] == "no-store"
    kiosk, _ = enroll_client(app, LINCOLN)
    assert kiosk.get("/check.json").get_json()["set_up"] is True
