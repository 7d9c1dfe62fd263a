"""Kiosks can be taken back; a device cookie lives 90 days from its last use."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from kiosk import clock
from kiosk.auth.devices import issue_enrollment
from kiosk.auth.policy import DEVICE_COOKIE
from kiosk.clock import now_utc
from kiosk.db import writing
from kiosk.models import AuditEntry, Kiosk, School
from kiosk.webdb import database
from tests.conftest import csrf_token, enroll_client, start_fields, tap_start

NINETY_DAYS = 90 * 24 * 3600
GONE = "This device is no longer set up"


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


def kiosk(app: Flask, kiosk_id: int) -> Kiosk:
    with database(app).session_factory() as session:
        row = session.get(Kiosk, kiosk_id)
        assert row is not None
        return row


def device_cookie_header(response: Any) -> str:
    [header] = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{DEVICE_COOKIE}=")
    ]
    return header


def test_revoke_through_the_cli_and_the_next_page_and_poll_say_so(
    app: Flask, district: dict[str, Any]
) -> None:
    client, kiosk_id = enroll_client(app, district["school_names"][0])
    tap_start(client)
    assert client.get("/desk/status.json").get_json()["open"] is True

    result = run(app, "kiosks", "revoke", str(kiosk_id))
    assert result.exit_code == 0, result.output
    assert f"revoked kiosk {kiosk_id} (Lincoln Elementary School, Front desk)" in result.output

    page = client.get("/desk/")
    assert page.status_code == 403
    body = page.get_data(as_text=True)
    assert GONE in body
    assert "ask the district office for a new setup link" in body
    # The words are calm and neutral: nothing about agents, agencies or alerts.
    shown = re.findall(r"[a-z]+", body.lower().split("<main", 1)[1])
    for word in ("agent", "agents", "ice", "immigration", "alert", "revoked", "error"):
        assert word not in shown
    poll = client.get("/desk/status.json?since=x")
    assert poll.status_code == 403
    assert poll.get_json() == {"open": False, "set_up": False, "message": GONE + "."}
    # The start control does nothing for it either, and nothing renews its cookie.
    assert client.post("/desk/start", data={}).status_code == 403
    assert not [h for h in page.headers.getlist("Set-Cookie") if h.startswith(f"{DEVICE_COOKIE}=")]

    row = kiosk(app, kiosk_id)
    assert row.revoked_at is not None
    with database(app).session_factory() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry is not None
        assert (entry.action, entry.subject) == ("kiosk.revoke", f"kiosk:{row.public_id}")
    again = run(app, "kiosks", "revoke", row.public_id)
    assert again.exit_code == 0
    assert "was already revoked" in again.output


def test_revoke_by_public_id_leaves_other_kiosks_alone(
    app: Flask, district: dict[str, Any]
) -> None:
    first, first_id = enroll_client(app, district["school_names"][0])
    second, _ = enroll_client(app, district["school_names"][1])
    result = run(app, "kiosks", "revoke", kiosk(app, first_id).public_id)
    assert result.exit_code == 0, result.output
    assert GONE in first.get("/desk/").get_data(as_text=True)
    assert second.get("/desk/").status_code == 200
    unknown = run(app, "kiosks", "revoke", "no-such-kiosk")
    assert unknown.exit_code != 0
    assert "no kiosk 'no-such-kiosk'" in unknown.output


def test_list_shows_school_label_enrolled_last_check_in_and_revoked(
    app: Flask, district: dict[str, Any]
) -> None:
    client, kiosk_id = enroll_client(app, district["school_names"][0])
    _, other_id = enroll_client(app, district["school_names"][1])
    with writing(), database(app).session_factory() as session, session.begin():
        school = session.scalar(select(School).where(School.name == district["school_names"][0]))
        assert school is not None
        issue_enrollment(session, school, now_utc(), 1, label="Side office")
    run(app, "kiosks", "revoke", str(other_id))
    lines = run(app, "kiosks", "list").output.splitlines()
    assert lines[0].split() == [
        "ID", "PUBLIC", "ID", "SCHOOL", "LABEL", "ENROLLED", "LAST", "CHECK-IN", "REVOKED"
    ]  # fmt: skip
    by_id = {line.split()[0]: line for line in lines[1:]}
    active = by_id[str(kiosk_id)]
    assert "Lincoln Elementary School" in active and "Front desk" in active
    assert active.rstrip().endswith("no")
    assert active.count(" UTC") == 2  # enrolled and last check-in
    pending = next(line for line in lines if "Side office" in line)
    assert "not yet" in pending
    revoked = by_id[str(other_id)]
    assert not revoked.rstrip().endswith("no") and revoked.count(" UTC") == 3


def test_enrollment_sets_a_ninety_day_cookie_that_each_use_renews(
    app: Flask, district: dict[str, Any]
) -> None:
    with writing(), database(app).session_factory() as session, session.begin():
        school = session.scalar(select(School).where(School.name == district["school_names"][0]))
        assert school is not None
        _, token = issue_enrollment(session, school, now_utc(), 1)
    client = app.test_client()
    response = client.post(
        f"/enroll/{token}", data={"csrf_token": csrf_token(client, f"/enroll/{token}")}
    )
    assert response.status_code == 302
    header = device_cookie_header(response)
    assert f"Max-Age={NINETY_DAYS}" in header
    assert "HttpOnly" in header and "SameSite=Lax" in header
    renewed = device_cookie_header(client.get("/desk/"))
    assert f"Max-Age={NINETY_DAYS}" in renewed
    assert renewed.split(";")[0] == header.split(";")[0]  # the same device secret
    poll = device_cookie_header(client.get("/desk/status.json"))
    assert f"Max-Age={NINETY_DAYS}" in poll


def test_a_kiosk_unused_for_ninety_days_is_no_longer_set_up(
    app: Flask, district: dict[str, Any]
) -> None:
    used, _ = enroll_client(app, district["school_names"][0])
    idle, _ = enroll_client(app, district["school_names"][0])
    try:
        clock.set_offset(60 * 24 * 3600)
        assert used.get("/desk/").status_code == 200  # used on day 60: 90 more days
        clock.set_offset(91 * 24 * 3600)
        assert used.get("/desk/").status_code == 200
        page = idle.get("/desk/")
        assert page.status_code == 403
        assert GONE in page.get_data(as_text=True)
    finally:
        clock.set_offset(0)


def test_check_in_is_written_at_most_once_a_minute_and_never_by_the_tap(
    app: Flask, district: dict[str, Any]
) -> None:
    client, kiosk_id = enroll_client(app, district["school_names"][0])
    enrolled = kiosk(app, kiosk_id).last_seen_at
    assert enrolled is not None
    try:
        clock.set_offset(30)
        client.get("/desk/")
        assert kiosk(app, kiosk_id).last_seen_at == enrolled  # within the minute
        clock.set_offset(61)
        client.get("/desk/")
        seen = kiosk(app, kiosk_id).last_seen_at
        assert seen is not None and seen - enrolled >= timedelta(seconds=61)
        clock.set_offset(200)
        page = client.get("/desk/").get_data(as_text=True)
        checked_in = kiosk(app, kiosk_id).last_seen_at
        clock.set_offset(300)
        assert client.post("/desk/start", data=start_fields(page)).status_code == 302
        assert kiosk(app, kiosk_id).last_seen_at == checked_in  # the tap wrote no check-in
        client.get("/desk/status.json")
        later = kiosk(app, kiosk_id).last_seen_at
        assert later is not None and checked_in is not None and later > checked_in
    finally:
        clock.set_offset(0)


def test_public_ids_never_start_with_a_dash_so_commands_take_them() -> None:
    from kiosk.models.base import new_public_id

    # One id in 64 would start with "-" if nothing prevented it: 2,000 draws see it.
    assert not any(new_public_id().startswith("-") for _ in range(2000))
