"""The second factor: who must set it up, the code step, recovery codes, replays, guessing,
the account page, and the administrator's reset."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from kiosk.clock import now_utc
from kiosk.models import AuditEntry, RecoveryCode
from kiosk.sealing import parse_keys
from kiosk.webdb import database
from tests.conftest import CSRF_PATTERN, csrf_token
from tests.test_policy import (
    PASSWORD,
    RECOVERY_PATTERN,
    SECRET_PATTERN,
    create_user,
    enroll_at_sign_in,
    login,
    user_of,
)

COUNSEL = "counsel@district.test"
ADMIN = "admin@demo-district.example"
DANA = "dana.reyes@demo-district.example"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - the demo district's printed password


@pytest.fixture
def clock() -> Iterator[Any]:
    from kiosk import clock as clock_module

    yield clock_module
    clock_module.set_offset(0)


def password_step(app: Flask, email: str, password: str = PASSWORD) -> FlaskClient:
    """Pass the first factor only; return the client, now between the password and the code."""
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"csrf_token": token, "email": email, "password": password}
    )
    assert response.status_code == 302
    client.location = response.headers["Location"]  # type: ignore[attr-defined]
    return client


def code_now(app: Flask, email: str, steps_ahead: int = 0) -> str:
    user = user_of(app, email)
    assert user.totp_secret
    totp = pyotp.TOTP(user.totp_secret)
    return totp.generate_otp(totp.timecode(now_utc()) + steps_ahead)


def send_code(client: FlaskClient, code: str) -> Any:
    token = csrf_token(client, "/login/code")
    return client.post("/login/code", data={"csrf_token": token, "code": code})


def signed_in(client: FlaskClient) -> bool:
    response = client.get("/account/security")
    return response.status_code == 200


def enrolled_counsel(app: Flask, district: Any) -> list[str]:
    """A counsel who has set up the second factor; return their recovery codes."""
    create_user(app, COUNSEL, "counsel")
    client = password_step(app, COUNSEL)
    return enroll_at_sign_in(app, client, COUNSEL)


@pytest.mark.parametrize(("email", "password"), [(COUNSEL, PASSWORD), (ADMIN, DEMO_PASSWORD)])
def test_counsel_and_admins_reach_no_page_before_setting_it_up(
    app: Flask, district: Any, email: str, password: str
) -> None:
    if email == COUNSEL:
        create_user(app, COUNSEL, "counsel")
    client = password_step(app, email, password)
    assert client.location.endswith("/login/setup-code")  # type: ignore[attr-defined]
    for path in ("/office/", "/admin/", "/office/outbox", "/account/security"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"], path
    page = client.get("/login/setup-code").get_data(as_text=True)
    assert "Set up a second factor" in page
    assert SECRET_PATTERN.search(page)
    assert "otpauth://totp/" in page and 'src="data:image/svg+xml' in page
    assert "Sign out" not in page  # nothing signed in, no office navigation


def test_a_designee_without_a_second_factor_signs_in_as_before(app: Flask, district: Any) -> None:
    client = password_step(app, DANA, DEMO_PASSWORD)
    assert client.location.endswith("/office/")  # type: ignore[attr-defined]
    assert client.get("/office/").status_code == 200


def test_setting_it_up_shows_the_recovery_codes_once_then_asks_for_a_code(
    app: Flask, district: Any
) -> None:
    create_user(app, COUNSEL, "counsel")
    client = password_step(app, COUNSEL)
    page = client.get("/login/setup-code").get_data(as_text=True)
    secret = SECRET_PATTERN.search(page)
    token = CSRF_PATTERN.search(page)
    assert secret and token
    # The same key on a reload: the app already holds it.
    assert secret.group(1) in client.get("/login/setup-code").get_data(as_text=True)
    wrong = client.post("/login/setup-code", data={"csrf_token": token.group(1), "code": "000000"})
    assert "That code does not match" in wrong.get_data(as_text=True)
    assert 'value="000000"' in wrong.get_data(as_text=True)  # what was typed comes back
    code = pyotp.TOTP(secret.group(1).replace(" ", "")).now()
    shown = client.post("/login/setup-code", data={"csrf_token": token.group(1), "code": code})
    codes = RECOVERY_PATTERN.findall(shown.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    # Signed in now; the codes are not shown again anywhere.
    assert signed_in(client)
    account = client.get("/account/security").get_data(as_text=True)
    assert "Recovery codes left: 10." in account and codes[0] not in account
    assert client.get("/login/setup-code").status_code == 302
    # Kept as hashes only, and the secret sealed at rest.
    with database(app).session_factory() as session:
        hashes = set(session.scalars(select(RecoveryCode.code_hash)))
        stored = session.execute(
            text("SELECT totp_secret FROM users WHERE email = :e"), {"e": COUNSEL}
        ).scalar_one()
    assert not hashes & set(codes) and stored.startswith("sealed:v1:")
    # The next sign-in asks for a code before anything is signed in.
    again = password_step(app, COUNSEL)
    assert again.location.endswith("/login/code")  # type: ignore[attr-defined]
    assert again.get("/office/").status_code == 302
    assert send_code(again, code_now(app, COUNSEL, 1)).status_code == 302
    assert signed_in(again)


def test_a_wrong_code_is_refused_and_counted_until_even_the_right_one_waits(
    make_app: Any, district: Any
) -> None:
    app = make_app(SIGNIN_FAILURES_ALLOWED=3)
    enrolled_counsel(app, district)
    client = password_step(app, COUNSEL)
    for _ in range(3):
        wrong = send_code(client, "123456" if code_now(app, COUNSEL) != "123456" else "654321")
        assert wrong.status_code == 200
        assert "That code does not match" in wrong.get_data(as_text=True)
    # A right password again does not clear the count of codes guessed after it.
    client = password_step(app, COUNSEL)
    refused = send_code(client, code_now(app, COUNSEL, 1))
    assert refused.status_code == 429
    assert "Too many codes were tried" in refused.get_data(as_text=True)
    assert not signed_in(client)
    # Counted in the database: another server refuses too.
    other = make_app(SIGNIN_FAILURES_ALLOWED=3)
    elsewhere = password_step(other, COUNSEL)
    assert send_code(elsewhere, code_now(app, COUNSEL, 1)).status_code == 429


def test_a_code_already_used_is_refused(app: Flask, district: Any) -> None:
    enrolled_counsel(app, district)
    first = password_step(app, COUNSEL)
    code = code_now(app, COUNSEL, 1)
    assert send_code(first, code).status_code == 302
    second = password_step(app, COUNSEL)
    replayed = send_code(second, code)
    assert "That code was already used" in replayed.get_data(as_text=True)
    assert not signed_in(second)


def test_the_same_code_sent_twice_at_once_signs_in_once(make_app: Any, district: Any) -> None:
    app = make_app()
    enrolled_counsel(app, district)
    clients = [password_step(app, COUNSEL) for _ in range(2)]
    tokens = [csrf_token(client, "/login/code") for client in clients]
    code = code_now(app, COUNSEL, 1)
    together = threading.Barrier(2)
    answers: list[int] = []

    def send(index: int) -> None:
        together.wait()
        data = {"csrf_token": tokens[index], "code": code}
        answers.append(clients[index].post("/login/code", data=data).status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == [200, 302]
    assert sum(signed_in(client) for client in clients) == 1


def test_a_recovery_code_works_once_instead_of_a_code(app: Flask, district: Any) -> None:
    codes = enrolled_counsel(app, district)
    client = password_step(app, COUNSEL)
    # Typed as a person might: upper case, spaces for hyphens.
    typed = codes[0].upper().replace("-", " ")
    assert send_code(client, typed).status_code == 302
    assert signed_in(client)
    assert "Recovery codes left: 9." in client.get("/account/security").get_data(as_text=True)
    again = password_step(app, COUNSEL)
    reused = send_code(again, codes[0])
    assert "That code was already used" in reused.get_data(as_text=True)
    assert not signed_in(again)


def test_the_code_step_lasts_five_minutes(app: Flask, district: Any, clock: Any) -> None:
    enrolled_counsel(app, district)
    client = password_step(app, COUNSEL)
    assert client.get("/login/code").status_code == 200
    clock.set_offset(5 * 60 + 1)
    late = client.get("/login/code")
    assert late.status_code == 302 and late.headers["Location"].endswith("/login")
    assert "Sign in again to continue." in client.get("/login").get_data(as_text=True)
    token = csrf_token(client, "/login")
    response = client.post(
        "/login/code", data={"csrf_token": token, "code": code_now(app, COUNSEL)}
    )
    assert response.status_code == 302 and not signed_in(client)


def test_a_reset_from_the_command_line_ends_sessions_and_asks_to_set_it_up_again(
    app: Flask, district: Any
) -> None:
    enrolled_counsel(app, district)
    client = login(app, COUNSEL)
    assert signed_in(client)
    result = app.test_cli_runner().invoke(args=["users", "reset-second-factor", COUNSEL.upper()])
    assert result.exit_code == 0, result.output
    assert "second factor reset" in result.output
    assert not signed_in(client)
    with database(app).session_factory() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "admin.user.reset_second_factor")
        ).one()
        assert entry.actor == "cli"
        assert session.scalars(select(RecoveryCode)).all() == []
    again = password_step(app, COUNSEL)
    assert again.location.endswith("/login/setup-code")  # type: ignore[attr-defined]
    nothing = app.test_cli_runner().invoke(args=["users", "reset-second-factor", DANA])
    assert nothing.exit_code == 0 and "nothing changed" in nothing.output
    unknown = app.test_cli_runner().invoke(args=["users", "reset-second-factor", "no@x.test"])
    assert unknown.exit_code != 0 and "no one signs in as no@x.test" in unknown.output


def account_form(client: FlaskClient, prefix: str, code: str) -> dict[str, str]:
    page = client.get("/account/security").get_data(as_text=True)
    token = re.search(rf'name="{prefix}-csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, page
    return {f"{prefix}-csrf_token": token.group(1), f"{prefix}-code": code}


def test_a_designee_turns_it_on_renews_the_codes_and_turns_it_off(
    app: Flask, district: Any
) -> None:
    client = login(app, DANA, DEMO_PASSWORD)
    page = client.get("/account/security").get_data(as_text=True)
    assert "Off. You sign in with your password alone." in page
    setup = client.get("/account/security/setup").get_data(as_text=True)
    secret = SECRET_PATTERN.search(setup)
    token = CSRF_PATTERN.search(setup)
    assert secret and token
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    step = totp.timecode(now_utc())
    shown = client.post(
        "/account/security/setup",
        data={"csrf_token": token.group(1), "code": totp.generate_otp(step)},
    )
    first_codes = RECOVERY_PATTERN.findall(shown.get_data(as_text=True))
    assert len(first_codes) == 10
    assert "On. Signing in asks" in client.get("/account/security").get_data(as_text=True)
    # New codes need a code from the app; the old ones stop working.
    wrong = client.post(
        "/account/security/recovery-codes", data=account_form(client, "recovery", "000001")
    )
    assert "That code does not match" in wrong.get_data(as_text=True)
    renewed = client.post(
        "/account/security/recovery-codes",
        data=account_form(client, "recovery", totp.generate_otp(step + 1)),
    )
    second_codes = RECOVERY_PATTERN.findall(renewed.get_data(as_text=True))
    assert len(second_codes) == 10 and not set(first_codes) & set(second_codes)
    other = password_step(app, DANA, DEMO_PASSWORD)
    assert other.location.endswith("/login/code")  # type: ignore[attr-defined]
    assert "That code does not match" in send_code(other, first_codes[0]).get_data(as_text=True)
    assert send_code(other, second_codes[0]).status_code == 302
    # Off again, with a recovery code standing in for the app.
    off = client.post(
        "/account/security/turn-off", data=account_form(client, "off", second_codes[1])
    )
    assert off.status_code == 302
    assert "Off. You sign in" in client.get("/account/security").get_data(as_text=True)
    assert password_step(app, DANA, DEMO_PASSWORD).location.endswith("/office/")  # type: ignore[attr-defined]


def test_counsel_cannot_turn_it_off(app: Flask, district: Any) -> None:
    codes = enrolled_counsel(app, district)
    client = login(app, COUNSEL)
    page = client.get("/account/security").get_data(as_text=True)
    assert "Your role requires a second factor, so it stays on." in page
    assert "Turn off the second factor" not in page
    data = account_form(client, "recovery", codes[0])
    data = {"off-csrf_token": data["recovery-csrf_token"], "off-code": codes[0]}
    refused = client.post("/account/security/turn-off", data=data)
    assert "cannot be turned off" in refused.get_data(as_text=True)
    assert "On. Signing in asks" in client.get("/account/security").get_data(as_text=True)
    # The recovery code was not used up by the refused change.
    assert "Recovery codes left: 10." in client.get("/account/security").get_data(as_text=True)


def test_the_account_page_is_for_office_people_only(app: Flask, district: Any) -> None:
    anonymous = app.test_client().get("/account/security")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    create_user(app, "desk@district.test", "front_desk", "Lincoln Elementary School")
    token = csrf_token(desk := app.test_client(), "/login")
    desk.post(
        "/login",
        data={"csrf_token": token, "email": "desk@district.test", "password": PASSWORD},
    )
    assert desk.get("/account/security").status_code == 403


def test_the_key_moves_to_a_new_encryption_key_with_keys_rotate(
    make_app: Any, district: Any
) -> None:
    app = make_app()
    enrolled_counsel(app, district)
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    keys_file = Path(app.instance_path) / "keys.json"
    keyring = parse_keys(json.loads(keys_file.read_text())["ENCRYPTION_KEY"])
    # Only the new key is needed to read the second factor's key and sign in with it.
    reader = make_app(ENCRYPTION_KEY=keyring.only_current().spec())
    assert signed_in(login(reader, COUNSEL))
