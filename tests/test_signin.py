"""Sign-in: guessing is slowed down, and a refused guess costs the server no hashing."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.conftest import csrf_token

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
    from kiosk.auth import views

    client = app.test_client()
    for _ in range(10):
        sign_in(client, DANA, "wrong")
    checked: list[str] = []
    real = views.check_password_hash
    monkeypatch.setattr(views, "check_password_hash", lambda h, p: checked.append(p) or real(h, p))
    assert sign_in(client, DANA, "wrong").status_code == 429
    assert checked == []


def test_the_window_passes_and_a_right_password_clears_the_count(app: Flask, district: Any) -> None:
    from kiosk.auth.throttle import Throttle

    throttle = Throttle(2, 60)
    throttle.failed(["a"], now=0)
    throttle.failed(["a"], now=1)
    assert throttle.blocked(["a"], now=30)
    assert not throttle.blocked(["a"], now=61.5)  # the first failure left the window
    throttle.succeeded(["a"])
    assert not throttle.blocked(["a"], now=2)


def _hash_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the method and cost (the part before the salt) of every password check."""
    from kiosk.auth import views

    seen: list[str] = []
    real = views.check_password_hash

    def counting(hashed: str, password: str) -> bool:
        seen.append(hashed.split("$", 1)[0])
        return real(hashed, password)

    monkeypatch.setattr(views, "check_password_hash", counting)
    return seen


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
    assert known == unknown == [app.config["PASSWORD_HASH"]]


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
    assert seen == [app.config["PASSWORD_HASH"]]
