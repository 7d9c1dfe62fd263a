"""Sign-ins in the audit chain: who signed in, how, who failed, who was refused and who
signed out, each as the account's public id (or "anonymous" for an email with no account),
and never a password, a code, a token or an email."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.clock import now_utc
from kiosk.models import AuditEntry
from kiosk.webdb import database
from tests.conftest import CSRF_PATTERN, csrf_token
from tests.oidc.support import Provider
from tests.test_oidc import oidc_app, provider  # noqa: F401 - fixtures used below
from tests.test_oidc import sign_in as sign_in_with_provider
from tests.test_policy import RECOVERY_PATTERN, SECRET_PATTERN, login, user_of
from tests.test_second_factor import account_form, password_step, send_code

DANA = "dana.reyes@demo-district.example"
JORDAN = "jordan.kim@demo-district.example"
ADMIN = "admin@demo-district.example"
PASSWORD = "demo-password"  # noqa: S105 - the demo district's printed password
NOBODY = "nobody@demo-district.example"


def entries(app: Flask, *actions: str) -> list[AuditEntry]:
    with database(app).session_factory() as session:
        query = select(AuditEntry).order_by(AuditEntry.seq)
        if actions:
            query = query.where(AuditEntry.action.in_(actions))
        found = list(session.scalars(query))
        session.expunge_all()
        return found


def details(entry: AuditEntry) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(entry.details)
    return loaded


def actor_of(app: Flask, email: str) -> str:
    return f"user:{user_of(app, email).public_id}"


def assert_no_secret(app: Flask, *secrets: str) -> None:
    """No entry holds any of these (nor any email at all)."""
    for entry in entries(app):
        text = f"{entry.actor} {entry.subject} {entry.details}"
        assert "@" not in text, text
        for secret in secrets:
            assert secret not in text, text


def verifies(app: Flask) -> bool:
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    return result.exit_code == 0


def password_sign_in(client: FlaskClient, email: str, password: str) -> Any:
    token = csrf_token(client, "/login")
    return client.post("/login", data={"csrf_token": token, "email": email, "password": password})


def test_a_password_sign_in_and_sign_out_are_recorded(app: Flask, district: Any) -> None:
    client = login(app, DANA, PASSWORD)
    dana = actor_of(app, DANA)
    [success] = entries(app, "signin.success")
    assert success.actor == dana == success.subject
    assert details(success) == {"method": "password", "second_factor": False}
    token = csrf_token(client, "/office/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    [signout] = entries(app, "signout")
    assert signout.actor == dana and signout.seq == success.seq + 1
    assert_no_secret(app, PASSWORD)
    assert verifies(app)


def test_a_wrong_password_is_recorded_for_the_account_and_an_unknown_email_without_it(
    app: Flask, district: Any
) -> None:
    assert password_sign_in(app.test_client(), DANA, "wrong-guess-1").status_code == 200
    assert password_sign_in(app.test_client(), NOBODY, "wrong-guess-2").status_code == 200
    known, unknown = entries(app, "signin.failed")
    assert known.actor == known.subject == actor_of(app, DANA)
    assert unknown.actor == "anonymous" and unknown.subject == ""
    assert details(known) == details(unknown) == {}
    assert_no_secret(app, "wrong-guess", "nobody")
    assert entries(app, "signin.success") == []
    assert verifies(app)


def test_the_lockout_is_recorded_once_when_it_starts_and_a_refusal_is_not_a_write_each(
    make_app: Any, district: Any
) -> None:
    app = make_app(SIGNIN_FAILURES_ALLOWED=3)
    client = app.test_client()
    for _ in range(3):
        assert password_sign_in(client, DANA, "wrong").status_code == 200
    for _ in range(4):
        assert password_sign_in(client, DANA, PASSWORD).status_code == 429
    [started] = entries(app, "signin.refused")
    assert started.actor == actor_of(app, DANA)
    assert details(started) == {"reason": "lockout started", "by": ["email"]}
    assert len(entries(app, "signin.failed")) == 3
    assert entries(app, "signin.success") == []
    assert_no_secret(app, PASSWORD)
    assert verifies(app)


def test_the_second_factor_steps_are_recorded_without_the_codes(app: Flask, district: Any) -> None:
    client = login(app, DANA, PASSWORD)
    dana = actor_of(app, DANA)
    setup = client.get("/account/security/setup").get_data(as_text=True)
    secret, token = SECRET_PATTERN.search(setup), CSRF_PATTERN.search(setup)
    assert secret and token
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    step = totp.timecode(now_utc())
    on = client.post(
        "/account/security/setup",
        data={"csrf_token": token.group(1), "code": totp.generate_otp(step)},
    )
    assert on.status_code == 200
    renewed = client.post(
        "/account/security/recovery-codes",
        data=account_form(client, "recovery", totp.generate_otp(step + 1)),
    )
    assert renewed.status_code == 200
    codes = RECOVERY_PATTERN.findall(renewed.get_data(as_text=True))
    assert len(codes) == 10
    # Signing in again: a wrong code, then the right one.
    other = password_step(app, DANA, PASSWORD)
    assert "does not match" in send_code(other, "000001").get_data(as_text=True)
    assert send_code(other, codes[0]).status_code == 302
    off = client.post("/account/security/turn-off", data=account_form(client, "off", codes[1]))
    assert off.status_code == 302
    actions = [
        e.action
        for e in entries(app)
        if e.action.startswith(("account.", "signin.second_factor", "signin.success"))
    ]
    assert actions == [
        "signin.success",
        "account.second_factor_on",
        "account.second_factor_renew",
        "signin.second_factor_failed",
        "signin.success",
        "account.second_factor_off",
    ]
    # From her first sign-in on (before it, the seeded district's role grants).
    first = entries(app, "signin.success")[0].seq
    for entry in entries(app):
        assert entry.seq < first or entry.actor == dana
    failed = entries(app, "signin.second_factor_failed")[0]
    assert details(failed) == {"why": "wrong", "for": "signin"}
    second = entries(app, "signin.success")[1]
    assert details(second) == {"method": "password", "second_factor": True}
    assert_no_secret(app, PASSWORD, "000001", secret.group(1).replace(" ", ""), *codes)
    assert verifies(app)


def test_a_sign_in_through_the_identity_provider_is_recorded_as_such(
    oidc_app: Flask,  # noqa: F811 - the fixture imported above
    provider: Provider,  # noqa: F811
) -> None:
    client = oidc_app.test_client()
    answer = sign_in_with_provider(client, DANA)
    assert answer.status_code == 302 and answer.headers["Location"] == "/office/"
    [success] = entries(oidc_app, "signin.success")
    assert success.actor == actor_of(oidc_app, DANA)
    assert details(success) == {"method": "oidc", "second_factor": False}
    assert_no_secret(oidc_app)
    assert verifies(oidc_app)


def test_two_people_signing_in_at_once_leave_a_whole_chain(app: Flask, district: Any) -> None:
    people = [(DANA, PASSWORD), (JORDAN, PASSWORD), (DANA, "wrong"), (NOBODY, "wrong")]
    clients = [app.test_client() for _ in people]
    tokens = [csrf_token(client, "/login") for client in clients]
    together = threading.Barrier(len(people))
    codes: list[int] = []

    def sign_in(index: int) -> None:
        email, password = people[index]
        data = {"csrf_token": tokens[index], "email": email, "password": password}
        together.wait()
        codes.append(clients[index].post("/login", data=data).status_code)

    threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(len(people))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [200, 200, 302, 302]
    chain = entries(app)
    assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
    assert sorted(e.actor for e in entries(app, "signin.success")) == sorted(
        [actor_of(app, DANA), actor_of(app, JORDAN)]
    )
    assert len(entries(app, "signin.failed")) == 2
    assert verifies(app)


def test_a_sign_out_without_a_live_session_records_nothing(app: Flask, district: Any) -> None:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    assert client.post("/logout", data={"csrf_token": token.group(1)}).status_code == 302
    assert entries(app, "signout") == []
