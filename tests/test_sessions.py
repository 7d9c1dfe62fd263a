"""Signed-in sessions live in the database: the cookie names one, signing out or a change
of access ends it everywhere, and it ends by itself when idle or old."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.db import writing
from kiosk.models import RoleGrant, SigninSession, User
from kiosk.webdb import database
from tests.conftest import csrf_token, tap_start

DANA = "dana.reyes@demo-district.example"
COOKIE = "kiosk_session"


@pytest.fixture
def clock() -> Iterator[Any]:
    from kiosk import clock as clock_module

    yield clock_module
    clock_module.set_offset(0)


def signed_in(app: Flask, email: str = DANA) -> FlaskClient:
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"csrf_token": token, "email": email, "password": "demo-password"}
    )
    assert response.status_code == 302
    return client


def in_office(client: FlaskClient) -> bool:
    response = client.get("/office/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    return False


def sign_out(client: FlaskClient) -> None:
    token = csrf_token(client, "/office/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def with_cookie(app: Flask, value: str) -> FlaskClient:
    client = app.test_client()
    client.set_cookie(COOKIE, value, domain="localhost")
    return client


def session_rows(app: Flask) -> list[SigninSession]:
    with database(app).session_factory() as session:
        return list(session.scalars(select(SigninSession)))


def test_the_cookie_names_a_random_session_whose_hash_alone_is_stored(
    app: Flask, district: Any
) -> None:
    client = signed_in(app)
    with client.session_transaction() as cookie_session:
        token = cookie_session["sid"]
        assert "uid" not in cookie_session
    (row,) = session_rows(app)
    assert len(token) >= 40 and row.token_hash != token and token not in row.token_hash
    assert in_office(client)


def test_a_cookie_replayed_after_sign_out_is_refused(app: Flask, district: Any) -> None:
    client = signed_in(app)
    copied = cookie_of(client)
    sign_out(client)
    assert session_rows(app) == []
    assert not in_office(with_cookie(app, copied))


def test_signing_out_on_one_server_ends_the_session_on_another(
    make_app: Any, district: Any
) -> None:
    first, second = make_app(), make_app()
    client = signed_in(first)
    copied = cookie_of(client)
    assert in_office(with_cookie(second, copied))
    sign_out(client)
    assert not in_office(with_cookie(second, copied))


def test_disabling_a_person_ends_their_sessions_at_once(app: Flask, district: Any, db: Any) -> None:
    client, elsewhere = signed_in(app), signed_in(app)
    other = signed_in(app, "jordan.kim@demo-district.example")
    with writing():
        user = db.scalar(select(User).where(User.email == DANA))
        user.active = False
        db.commit()
    assert not in_office(client) and not in_office(elsewhere)
    assert in_office(other)
    assert len(session_rows(app)) == 1


def test_changing_a_persons_roles_ends_their_sessions(app: Flask, district: Any, db: Any) -> None:
    granted, revoked = signed_in(app), signed_in(app, "jordan.kim@demo-district.example")
    with writing():
        dana = db.scalar(select(User).where(User.email == DANA))
        db.add(RoleGrant(user_id=dana.id, role="reviewer", school_id=None))
        jordan = db.scalar(select(User).where(User.email == "jordan.kim@demo-district.example"))
        db.delete(db.scalars(select(RoleGrant).where(RoleGrant.user_id == jordan.id)).first())
        db.commit()
    assert not in_office(granted) and not in_office(revoked)
    assert in_office(signed_in(app))  # signing in again gives the new roles


def test_a_session_ends_after_thirty_idle_minutes(app: Flask, district: Any, clock: Any) -> None:
    client = signed_in(app)
    clock.set_offset(29 * 60)
    assert in_office(client)  # activity moves the idle limit on
    clock.set_offset(29 * 60 + 29 * 60)
    assert in_office(client)
    clock.set_offset(29 * 60 + 29 * 60 + 31 * 60)
    assert not in_office(client)


def test_a_session_ends_twelve_hours_after_sign_in_however_busy(
    app: Flask, district: Any, clock: Any
) -> None:
    client = signed_in(app)
    minutes = 0
    while minutes < 12 * 60 - 20:
        minutes += 20
        clock.set_offset(minutes * 60)
        assert in_office(client)
    clock.set_offset(12 * 3600)
    assert not in_office(client)


def test_the_limits_come_from_the_settings(make_app: Any, district: Any, clock: Any) -> None:
    app = make_app(SESSION_IDLE_MINUTES=5, SESSION_MAX_HOURS=1)
    client = signed_in(app)
    clock.set_offset(6 * 60)
    assert not in_office(client)
    client = signed_in(app)
    for minutes in (4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56):
        clock.set_offset(6 * 60 + minutes * 60)
        assert in_office(client)
    clock.set_offset(6 * 60 + 60 * 60)
    assert not in_office(client)


def test_the_desk_keeps_its_own_cookie_session(
    app: Flask, district: Any, kiosk_client: FlaskClient
) -> None:
    assert tap_start(kiosk_client).status_code == 302
    assert kiosk_client.get("/desk/").status_code == 200
    assert session_rows(app) == []
