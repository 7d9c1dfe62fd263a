"""Sign-in: guessing is slowed down, and a refused guess costs the server no hashing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.conftest import csrf_token, tap_start

DANA = "dana.reyes@demo-district.example"


def sign_in(client: Any, email: str, password: str) -> Any:
    token = csrf_token(client, "/login")
    return client.post("/login", data={"csrf_token": token, "email": email, "password": password})


def test_after_ten_wrong_passwords_even_the_right_one_waits(app: Flask, district: Any) -> None:
    client = app.test_client()
    for _ in range(10):
        assert sign_in(client, DANA, "wrong").status_code == 200
    refused = sign_in(client, DANA, "demo-password")
    assert refused.status_code == 429
    page = refused.get_data(as_text=True)
    assert "Too many sign-in attempts" in page
    assert f'value="{DANA}"' in page  # the email typed is kept
    assert 'name="csrf_token"' in page and "demo-password" not in page
    # Another person at the same address still signs in.
    other = sign_in(app.test_client(), "jordan.kim@demo-district.example", "demo-password")
    assert other.status_code == 302


def test_a_refused_guess_checks_no_password(
    app: Flask, district: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiosk.auth import passwords

    client = app.test_client()
    for _ in range(10):
        sign_in(client, DANA, "wrong")
    checked: list[str] = []
    real = passwords.verify
    monkeypatch.setattr(passwords, "verify", lambda h, p: checked.append(p) or real(h, p))
    assert sign_in(client, DANA, "wrong").status_code == 429
    assert checked == []


@pytest.fixture
def clock() -> Iterator[Any]:
    from kiosk import clock as clock_module

    yield clock_module
    clock_module.set_offset(0)


def test_the_lockout_ends_and_a_right_password_clears_the_count(
    make_app: Any, district: Any, clock: Any
) -> None:
    app = make_app(SIGNIN_FAILURES_ALLOWED=2, SIGNIN_WINDOW_SECONDS=60)
    client = app.test_client()
    for _ in range(2):
        assert sign_in(client, DANA, "wrong").status_code == 200
    assert sign_in(client, DANA, "demo-password").status_code == 429
    clock.set_offset(61)  # the lockout lasted one window
    assert sign_in(client, DANA, "wrong").status_code == 200
    assert sign_in(client, DANA, "demo-password").status_code == 302
    # The right password forgot the failure before it: two more are allowed again.
    other = app.test_client()
    assert sign_in(other, DANA, "wrong").status_code == 200
    assert sign_in(other, DANA, "wrong").status_code == 200
    assert sign_in(other, DANA, "wrong").status_code == 429


def test_each_lockout_lasts_twice_as_long_as_the_last(
    make_app: Any, district: Any, clock: Any
) -> None:
    app = make_app(SIGNIN_FAILURES_ALLOWED=2, SIGNIN_WINDOW_SECONDS=60)
    client = app.test_client()
    elapsed = 0
    for lockout in (60, 120, 240):
        for _ in range(2):
            assert sign_in(client, DANA, "wrong").status_code == 200
        clock.set_offset(elapsed + lockout - 1)
        assert sign_in(client, DANA, "wrong").status_code == 429
        elapsed += lockout
        clock.set_offset(elapsed)


def test_a_lockout_already_read_is_refused_without_reading_again(app: Flask, district: Any) -> None:
    """A flood of guesses at a locked key costs the server no database work at all."""
    from sqlalchemy import event

    from kiosk.webdb import database

    client = app.test_client()
    for _ in range(10):
        sign_in(client, DANA, "wrong")
    assert sign_in(client, DANA, "wrong").status_code == 429  # read once, and remembered
    token = csrf_token(client, "/login")
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = database(app).engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for _ in range(5):
            answer = client.post(
                "/login", data={"csrf_token": token, "email": DANA, "password": "wrong"}
            )
            assert answer.status_code == 429
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "signin_throttles" in s], statements


def test_failures_counted_on_one_server_are_refused_on_another(
    make_app: Any, district: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_app(), make_app()
    for _ in range(10):
        assert sign_in(first.test_client(), DANA, "wrong").status_code == 200
    seen = _hash_checks(monkeypatch)
    refused = sign_in(second.test_client(), DANA, "demo-password")
    assert refused.status_code == 429 and seen == []


def test_wrong_guesses_sent_at_once_cannot_slip_past_the_limit(
    make_app: Any, district: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(SIGNIN_FAILURES_ALLOWED=3)
    guesses = 8
    clients = [app.test_client() for _ in range(guesses)]
    tokens = [csrf_token(client, "/login") for client in clients]
    seen = _hash_checks(monkeypatch)
    together = threading.Barrier(guesses)
    codes: list[int] = []

    def guess(index: int) -> None:
        together.wait()
        data = {"csrf_token": tokens[index], "email": DANA, "password": f"wrong{index}"}
        codes.append(clients[index].post("/login", data=data).status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [200] * 3 + [429] * (guesses - 3)
    assert len(seen) == 3  # only the allowed tries were hashed


def test_the_kiosk_is_never_throttled(app: Flask, district: Any, kiosk_client: Any) -> None:
    for _ in range(60):  # the email's and the address's limits are both used up
        sign_in(app.test_client(), DANA, "wrong")
    assert sign_in(app.test_client(), DANA, "demo-password").status_code == 429
    assert tap_start(kiosk_client).status_code == 302
    assert kiosk_client.get("/desk/").status_code == 200


def _hash_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the method and cost (the part before the salt) of every password check."""
    from kiosk.auth import passwords

    seen: list[str] = []
    real = passwords.verify

    def counting(hashed: str, password: str) -> bool:
        seen.append("$".join(hashed.split("$")[:4]))
        return real(hashed, password)

    monkeypatch.setattr(passwords, "verify", counting)
    return seen


def _configured_cost(app: Flask) -> str:
    """The method and cost a hash made now with the app's settings starts with."""
    config = app.config
    return (
        f"$argon2id$v=19$m={config['PASSWORD_MEMORY_KIB']},"
        f"t={config['PASSWORD_TIME_COST']},p={config['PASSWORD_PARALLELISM']}"
    )


def test_an_unknown_email_costs_the_same_hash_check_as_a_known_one(
    app: Flask, district: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _hash_checks(monkeypatch)
    assert sign_in(app.test_client(), DANA, "wrong").status_code == 200
    known = list(seen)
    seen.clear()
    assert sign_in(app.test_client(), "nobody@demo-district.example", "wrong").status_code == 200
    unknown = list(seen)
    assert len(known) == len(unknown) == 1
    assert known == unknown == [_configured_cost(app)]


def test_an_account_without_a_password_is_checked_the_same_way_and_refused(
    app: Flask, district: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import update

    from kiosk.db import writing
    from kiosk.models import User

    with writing():
        db.execute(update(User).where(User.email == DANA).values(password_hash=None))
        db.commit()
    seen = _hash_checks(monkeypatch)
    response = sign_in(app.test_client(), DANA, "anything")
    assert response.status_code == 200 and "do not match" in response.get_data(as_text=True)
    assert seen == [_configured_cost(app)]
