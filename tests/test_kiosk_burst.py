"""A kiosk that starts many requests in a short time is flagged to the office, never refused."""

from __future__ import annotations

import json

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk import clock
from kiosk.models import Encounter, EncounterEvent
from kiosk.webdb import database
from tests.conftest import csrf_token, start_fields, tap_start
from tests.test_office import DANA, login


def tap_and_stand_down(client: FlaskClient) -> None:
    """Start a request, then mark it as started by mistake so the kiosk is idle again."""
    assert tap_start(client).status_code == 302
    token = csrf_token(client, "/desk/mistake")
    assert client.post("/desk/mistake", data={"csrf_token": token}).status_code == 302


def all_encounters(app: Flask) -> list[Encounter]:
    with database(app).session_factory() as session:
        return list(session.scalars(select(Encounter).order_by(Encounter.id)))


def burst_events(app: Flask) -> list[tuple[int, dict[str, int]]]:
    with database(app).session_factory() as session:
        rows = session.scalars(
            select(EncounterEvent).where(EncounterEvent.kind == "kiosk_burst")
        ).all()
        return [(row.encounter_id, json.loads(row.data)) for row in rows]


def test_a_fourth_start_in_ten_minutes_is_flagged_and_still_alerts(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    try:
        for minute in (0, 3, 6):
            clock.set_offset(minute * 60)
            tap_and_stand_down(kiosk_client)
        assert burst_events(app) == []
        clock.set_offset(9 * 60)
        assert tap_start(kiosk_client).status_code == 302
        fourth = all_encounters(app)[-1]
        assert fourth.status == "open"  # the tap went ahead like any other
        assert fourth.kiosk_burst == 4
        assert burst_events(app) == [(fourth.id, {"started": 4, "minutes": 10})]

        dana = login(app, DANA)
        notice = "This kiosk started 4 requests in 10 minutes."
        assert notice in dana.get("/office/").get_data(as_text=True)
        listed = dana.get("/office/encounters.json").get_json()["encounters"]
        assert [e["burst"] for e in listed if e["id"] == fourth.public_id] == [notice]
        record = dana.get(f"/office/encounters/{fourth.public_id}").get_data(as_text=True)
        assert notice in record
        assert "Flagged: this kiosk started 4 requests in 10 minutes" in record
        # An earlier, unflagged start carries no notice.
        first = all_encounters(app)[0]
        earlier = dana.get(f"/office/encounters/{first.public_id}").get_data(as_text=True)
        assert "requests in 10 minutes" not in earlier
    finally:
        clock.set_offset(0)


def test_starts_spread_over_more_than_ten_minutes_are_not_flagged(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    try:
        for minute in (0, 4, 8, 11):
            clock.set_offset(minute * 60)
            tap_and_stand_down(kiosk_client)
        assert burst_events(app) == []
        assert all(e.kiosk_burst is None for e in all_encounters(app))
        assert len(all_encounters(app)) == 4
    finally:
        clock.set_offset(0)


def test_a_double_tap_is_one_start_and_is_not_counted_twice(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    page = kiosk_client.get("/desk/").get_data(as_text=True)
    fields = start_fields(page)
    for _ in range(5):
        assert kiosk_client.post("/desk/start", data=fields).status_code == 302
    assert len(all_encounters(app)) == 1
    assert burst_events(app) == []
