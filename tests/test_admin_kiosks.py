"""The kiosks page: enroll by link or short code, rename, revoke (at the kiosk's next
request), code expiry, guessing refused, and one winner when two devices type one code."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk import clock
from kiosk.auth.policy import DEVICE_COOKIE
from kiosk.db import writing
from kiosk.demo import seed
from kiosk.models import AuditEntry, Kiosk, School
from kiosk.webdb import database
from tests.conftest import CHEAP_COST, csrf_token, tap_start
from tests.test_policy import LINCOLN, login
from tests.test_races import together

ADMIN = "admin@demo-district.example"
GONE = "This device is no longer set up"
CODE = re.compile(r'id="enroll-code">([A-Z0-9]{4}-[A-Z0-9]{4})<')
LINK = re.compile(r'id="enroll-link">http://kiosk\.test(/enroll/[^<]+)<')


def admin_client(app: Flask) -> FlaskClient:
    return login(app, ADMIN, "demo-password")


def school_id(app: Flask, name: str = LINCOLN) -> str:
    with database(app).session_factory() as session:
        school = session.scalar(select(School).where(School.name == name))
        assert school is not None
        return school.public_id


def enroll_from_page(app: Flask, admin: FlaskClient, name: str = "East door") -> tuple[str, str]:
    """Enroll a kiosk on the kiosks page; return the link's path and the short code shown."""
    token = csrf_token(admin, "/admin/kiosks")
    page = admin.post(
        "/admin/kiosks", data={"csrf_token": token, "school": school_id(app), "name": name}
    )
    assert page.status_code == 200, page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    code, link = CODE.search(text), LINK.search(text)
    assert code and link, text
    return link.group(1), code.group(1)


def kiosk_rows(app: Flask) -> list[Kiosk]:
    with database(app).session_factory() as session:
        return list(session.scalars(select(Kiosk).order_by(Kiosk.id)))


def audit(app: Flask, action: str) -> list[dict[str, Any]]:
    with database(app).session_factory() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
        return [json.loads(e.details) for e in entries]


def type_code(app: Flask, device: FlaskClient, code: str) -> Any:
    """Type the code on /enroll; return the confirmation page (or the refusal)."""
    token = csrf_token(device, "/enroll")
    return device.post("/enroll", data={"csrf_token": token, "code": code})


def confirm_code(device: FlaskClient, code: str, token: str | None = None) -> Any:
    token = token or csrf_token(device, "/enroll")
    return device.post("/enroll", data={"csrf_token": token, "code": code, "confirm": "yes"})


def is_kiosk(device: FlaskClient) -> bool:
    page = device.get("/desk/")
    return page.status_code == 200 and "Notify district office" in page.get_data(as_text=True)


def test_the_page_lists_every_kiosk_by_school_with_its_state(
    app: Flask, district: dict[str, Any]
) -> None:
    admin = admin_client(app)
    enroll_from_page(app, admin, "East door")
    page = admin.get("/admin/kiosks").get_data(as_text=True)
    assert "East door" in page
    assert LINCOLN in page
    assert "Waiting for setup" in page
    assert "Never" in page  # no check-in yet
    assert '<a href="/admin/kiosks">Kiosks</a>' in page  # in the admin menu


def test_enroll_by_link_then_the_kiosk_checks_in(app: Flask, district: dict[str, Any]) -> None:
    admin = admin_client(app)
    link, _ = enroll_from_page(app, admin)
    device = app.test_client()
    assert "Set up this kiosk" in device.get(link).get_data(as_text=True)
    token = csrf_token(device, link)
    assert device.post(link, data={"csrf_token": token}).status_code == 302
    assert is_kiosk(device)
    [row] = kiosk_rows(app)
    assert row.label == "East door" and row.enrolled_at is not None
    assert row.enrollment_code_hash is None  # the code stops working with the link
    page = admin.get("/admin/kiosks").get_data(as_text=True)
    assert "Active" in page and "Never" not in page
    [entry] = audit(app, "admin.kiosk.enroll")
    assert entry["after"] == {"school": LINCOLN, "name": "East door"}
    # No link, code or device secret reaches the audit log.
    assert link.rsplit("/", 1)[1] not in json.dumps(entry)


def test_enroll_by_code_in_any_case_with_or_without_the_dash(
    app: Flask, district: dict[str, Any]
) -> None:
    admin = admin_client(app)
    link, code = enroll_from_page(app, admin)
    device = app.test_client()
    typed = code.replace("-", "").lower()
    page = type_code(app, device, typed)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Set up this kiosk" in text and LINCOLN in text
    assert not is_kiosk(device)  # nothing happens before the confirmation
    assert confirm_code(device, f" {code.lower()} ").status_code == 302
    assert is_kiosk(device)
    # Used once: neither the code nor the link sets up another device.
    other = app.test_client()
    assert type_code(app, other, code).status_code == 404
    assert other.get(link).status_code == 404


def test_a_wrong_code_keeps_what_was_typed_and_says_so_calmly(
    app: Flask, district: dict[str, Any]
) -> None:
    admin_client(app)
    device = app.test_client()
    page = type_code(app, device, "ABCD-EFGH")
    assert page.status_code == 404
    text = page.get_data(as_text=True)
    assert "That code does not work now" in text
    assert 'value="ABCD-EFGH"' in text
    assert 'aria-invalid="true"' in text


def test_a_code_expires(app: Flask, district: dict[str, Any]) -> None:
    admin = admin_client(app)
    link, code = enroll_from_page(app, admin)
    minutes = app.config["ENROLLMENT_CODE_MINUTES"]
    try:
        clock.set_offset(minutes * 60 + 5)
        device = app.test_client()
        assert type_code(app, device, code).status_code == 404
        assert not is_kiosk(device)
        # The link lasts hours, not minutes.
        assert device.get(link).status_code == 200
    finally:
        clock.set_offset(0)


def test_guessing_codes_is_refused_after_a_few_tries(make_app: Any) -> None:
    app = make_app(ENROLLMENT_CODE_TRIES=3)
    with writing(), database(app).session_factory() as session, session.begin():
        seed(session, CHEAP_COST)
    admin = admin_client(app)
    _, code = enroll_from_page(app, admin)
    guesser = app.test_client()
    answers = [type_code(app, guesser, f"ABCD-EFG{c}").status_code for c in "HJKM"]
    assert answers == [404, 404, 404, 429]
    # The right code from the same address now waits too; no kiosk was set up.
    refused = type_code(app, guesser, code)
    assert refused.status_code == 429
    text = refused.get_data(as_text=True)
    assert "Please wait a few minutes" in text and f'value="{code}"' in text
    assert not is_kiosk(guesser)


def test_rename_is_recorded(app: Flask, district: dict[str, Any]) -> None:
    admin = admin_client(app)
    enroll_from_page(app, admin, "East door")
    [row] = kiosk_rows(app)
    path = f"/admin/kiosks/{row.public_id}/rename"
    token = csrf_token(admin, path)
    bad = admin.post(path, data={"csrf_token": token, "name": "Main\u202eoffice"})
    assert bad.status_code == 422
    assert "reverses or reorders text" in bad.get_data(as_text=True)
    done = admin.post(path, data={"csrf_token": token, "name": "Main office"})
    assert done.status_code == 302
    assert kiosk_rows(app)[0].label == "Main office"
    assert "Main office" in admin.get("/admin/kiosks").get_data(as_text=True)
    [entry] = audit(app, "admin.kiosk.rename")
    assert entry == {"before": {"name": "East door"}, "after": {"name": "Main office"}}


def test_revoke_asks_first_and_takes_effect_at_the_kiosks_next_request(
    app: Flask, district: dict[str, Any]
) -> None:
    admin = admin_client(app)
    _, code = enroll_from_page(app, admin)
    device = app.test_client()
    type_code(app, device, code)
    confirm_code(device, code)
    assert tap_start(device).status_code == 302
    [row] = kiosk_rows(app)
    path = f"/admin/kiosks/{row.public_id}/revoke"
    confirm = admin.get(path)
    assert confirm.status_code == 200
    assert "Revoke this kiosk?" in confirm.get_data(as_text=True)
    assert kiosk_rows(app)[0].revoked_at is None  # asking changes nothing
    token = csrf_token(admin, path)
    assert admin.post(path, data={"csrf_token": token}).status_code == 302
    page = device.get("/desk/")
    assert page.status_code == 403
    assert GONE in page.get_data(as_text=True)
    assert device.get("/desk/status.json").get_json()["set_up"] is False
    assert not [h for h in page.headers.getlist("Set-Cookie") if h.startswith(DEVICE_COOKIE)]
    listing = admin.get("/admin/kiosks").get_data(as_text=True)
    assert "Revoked" in listing
    [entry] = audit(app, "admin.kiosk.revoke")
    assert entry["after"] == {"status": "revoked"}


def test_two_devices_typing_one_code_at_once_one_is_set_up(
    app: Flask, district: dict[str, Any]
) -> None:
    admin = admin_client(app)
    for trial in range(3):
        _, code = enroll_from_page(app, admin, f"Desk {trial}")
        devices = [app.test_client(), app.test_client()]
        # Each device has its confirmation page open (its form token read) before the race.
        presses = [
            functools.partial(confirm_code, d, code, csrf_token(d, "/enroll")) for d in devices
        ]
        answers = [r.status_code for r in together(*presses)]
        assert sorted(answers) == [302, 404], trial
        assert [is_kiosk(d) for d in devices].count(True) == 1
        row = kiosk_rows(app)[-1]
        assert row.device_hash is not None and row.enrollment_code_hash is None


def test_the_command_line_prints_the_code_and_renames(app: Flask, district: dict[str, Any]) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["kiosks", "enroll", "--school", LINCOLN, "--label", "Gym"])
    assert result.exit_code == 0, result.output
    assert len(re.findall(r"http://kiosk\.test/enroll/\S+", result.output)) == 1
    code = re.search(
        r"type the code ([A-Z0-9]{4}-[A-Z0-9]{4}) at http://kiosk\.test/enroll ", result.output
    )
    assert code, result.output
    device = app.test_client()
    assert LINCOLN in type_code(app, device, code.group(1)).get_data(as_text=True)
    [row] = kiosk_rows(app)
    renamed = runner.invoke(args=["kiosks", "rename", str(row.id), "Gym entrance"])
    assert renamed.exit_code == 0, renamed.output
    assert f"kiosk {row.id} ({LINCOLN}) is now named Gym entrance" in renamed.output
    listed = runner.invoke(args=["kiosks", "list"]).output
    assert "Gym entrance" in listed
    refused = runner.invoke(args=["kiosks", "rename", str(row.id), "  "])
    assert refused.exit_code != 0 and "give the kiosk a name" in refused.output
    with database(app).session_factory() as session:
        actors = session.scalars(
            select(AuditEntry.actor).where(AuditEntry.action.like("admin.kiosk.%"))
        ).all()
        assert actors == ["cli", "cli"]


def test_make_run_prints_the_admin_sign_in_and_each_front_desk_person(make_app: Any) -> None:
    app = make_app(DEMO=True)
    output = app.test_cli_runner().invoke(args=["demo"]).output
    assert "Administration (schools, people, kiosks): http://kiosk.test/admin/" in output
    assert f"  {ADMIN}  password: demo-password  (Demo Administrator; sets up a second" in output
    assert "http://kiosk.test/login" in output
    assert f"  {LINCOLN}: Pat Lee PIN 123456, Sam Ortiz PIN 234567" in output
    assert "  Riverside Middle School: Chris Nguyen PIN 345678, Robin Shah PIN 456789" in output
    # The printed sign-in works.
    assert admin_client(app).get("/admin/kiosks").status_code == 200


def test_a_waiting_kiosk_gets_a_new_link_and_code_and_the_old_ones_stop(
    app: Flask, district: dict[str, Any]
) -> None:
    admin = admin_client(app)
    old_link, old_code = enroll_from_page(app, admin)
    [row] = kiosk_rows(app)
    token = csrf_token(admin, "/admin/kiosks")
    page = admin.post(f"/admin/kiosks/{row.public_id}/renew", data={"csrf_token": token})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    new_code, new_link = CODE.search(text), LINK.search(text)
    assert new_code and new_link and new_code.group(1) != old_code
    device = app.test_client()
    assert device.get(old_link).status_code == 404
    assert type_code(app, device, old_code).status_code == 404
    assert type_code(app, device, new_code.group(1)).status_code == 200
    assert confirm_code(device, new_code.group(1)).status_code == 302
    assert is_kiosk(device)
    # Set up now: no new link for it (revoke it and enroll a new one instead).
    again = admin.post(
        f"/admin/kiosks/{row.public_id}/renew", data={"csrf_token": token}, follow_redirects=True
    )
    assert "set up already" in again.get_data(as_text=True)
    assert len(audit(app, "admin.kiosk.renew")) == 1
