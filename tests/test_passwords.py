"""Passwords and PINs: argon2id, older hashes replaced on use, the rules a new password must
meet, and the PIN lockout that locks one person, is shared by every process and decays."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.security import generate_password_hash

from kiosk.auth import passwords
from kiosk.auth.passwords import HashCost, cost_from, hash_password, password_problem
from kiosk.clock import now_utc
from kiosk.config import ConfigError, check_settings, load_settings
from kiosk.db import writing
from kiosk.models import EncounterEvent, User
from kiosk.webdb import database
from tests.conftest import (
    CHEAP_COST,
    csrf_token,
    encounters,
    enroll_client,
    outbox_rows,
    tap_start,
)
from tests.test_races import together

DANA = "dana.reyes@demo-district.example"
LINCOLN = "Lincoln Elementary School"
PAT_PIN = "123456"


def sign_in(client: FlaskClient, email: str, password: str) -> Any:
    token = csrf_token(client, "/login")
    return client.post("/login", data={"csrf_token": token, "email": email, "password": password})


def stored(app: Flask, **where: Any) -> User:
    with database(app).session_factory() as session:
        user = session.scalar(select(User).filter_by(**where))
        assert user is not None
        return user


def set_user(app: Flask, name: str, **values: Any) -> None:
    with writing(), database(app).session_factory() as session, session.begin():
        session.execute(update(User).where(User.display_name == name).values(**values))


@pytest.fixture
def clock() -> Iterator[Any]:
    from kiosk import clock as clock_module

    yield clock_module
    clock_module.set_offset(0)


# Hashing


def test_argon2id_hashes_verify_and_refuse_the_wrong_secret() -> None:
    hashed = hash_password("correct horse battery", CHEAP_COST)
    assert hashed.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert passwords.verify(hashed, "correct horse battery")
    assert not passwords.verify(hashed, "correct horse battery ")
    assert not passwords.needs_rehash(hashed, CHEAP_COST)


@pytest.mark.parametrize("method", ["scrypt", "pbkdf2:sha256:1000"])
def test_older_werkzeug_hashes_still_verify_and_need_a_rehash(method: str) -> None:
    hashed = generate_password_hash("an older password", method=method)
    assert passwords.verify(hashed, "an older password")
    assert not passwords.verify(hashed, "another password")
    assert passwords.needs_rehash(hashed, CHEAP_COST)


@pytest.mark.parametrize("hashed", ["", "plain text", "$argon2id$garbage", "md5:abc$def"])
def test_a_hash_in_no_known_form_matches_nothing(hashed: str) -> None:
    assert not passwords.verify(hashed, "plain text")


def test_other_argon2_parameters_need_a_rehash() -> None:
    hashed = hash_password("a password here", CHEAP_COST)
    assert passwords.needs_rehash(hashed, HashCost(time_cost=2, memory_kib=8, parallelism=1))
    assert passwords.needs_rehash(hashed, HashCost(time_cost=1, memory_kib=16, parallelism=1))


def test_the_default_cost_is_rfc_9106_low_memory(tmp_path: Any) -> None:
    cost = cost_from(load_settings({}, str(tmp_path)))
    assert cost == HashCost(time_cost=3, memory_kib=64 * 1024, parallelism=4)
    assert hash_password("one real hash", cost).startswith("$argon2id$v=19$m=65536,t=3,p=4$")


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"KIOSK_PASSWORD_TIME_COST": "0"}, "KIOSK_PASSWORD_TIME_COST must be 1 or more"),
        ({"KIOSK_PASSWORD_PARALLELISM": "0"}, "KIOSK_PASSWORD_PARALLELISM must be 1 or more"),
        ({"KIOSK_PASSWORD_MEMORY_KIB": "16"}, "at least 8 times KIOSK_PASSWORD_PARALLELISM"),
        ({"KIOSK_PASSWORD_MEMORY_KIB": "lots"}, "must be a whole number"),
    ],
)
def test_a_cost_argon2_cannot_run_with_is_refused_at_start(
    tmp_path: Any, environ: dict[str, str], words: str
) -> None:
    keys = {"KIOSK_SECRET_KEY": "s", "KIOSK_ENCRYPTION_KEY": "e"}
    keys |= {"KIOSK_AUDIT_KEY": "a", "KIOSK_INDEX_KEY": "i", "KIOSK_DEMO": "1"}
    with pytest.raises(ConfigError, match=words):
        check_settings(load_settings({**keys, **environ}, str(tmp_path)))


def test_the_retired_hash_setting_is_named_in_a_warning(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KIOSK_PASSWORD_HASH", "scrypt")
    with caplog.at_level(logging.WARNING):
        make_app()
    assert any("KIOSK_PASSWORD_HASH is no longer used" in r.getMessage() for r in caplog.records)


# Rehash on sign-in


@pytest.mark.parametrize("method", ["scrypt", "pbkdf2:sha256:1000"])
def test_an_older_hash_is_replaced_with_argon2id_at_sign_in(
    app: Flask, district: Any, method: str
) -> None:
    old = generate_password_hash("demo-password", method=method)
    set_user(app, "Dana Reyes", password_hash=old)
    assert sign_in(app.test_client(), DANA, "demo-password").status_code == 302
    new = stored(app, email=DANA).password_hash
    assert new is not None and new.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert sign_in(app.test_client(), DANA, "demo-password").status_code == 302
    assert stored(app, email=DANA).password_hash == new  # up to date: left alone


def test_a_wrong_password_leaves_an_older_hash_as_it_is(app: Flask, district: Any) -> None:
    old = generate_password_hash("demo-password", method="scrypt")
    set_user(app, "Dana Reyes", password_hash=old)
    assert sign_in(app.test_client(), DANA, "not-the-password").status_code == 200
    assert stored(app, email=DANA).password_hash == old


def test_a_changed_cost_rehashes_at_the_next_sign_in(make_app: Any, district: Any) -> None:
    first = stored(make_app(), email=DANA).password_hash
    stronger = make_app(PASSWORD_TIME_COST=2, PASSWORD_MEMORY_KIB=16)
    assert sign_in(stronger.test_client(), DANA, "demo-password").status_code == 302
    again = stored(stronger, email=DANA).password_hash
    assert first != again and again.startswith("$argon2id$v=19$m=16,t=2,p=1$")


def test_a_rehash_never_overwrites_a_password_changed_meanwhile(app: Flask, district: Any) -> None:
    dana = stored(app, email=DANA)
    changed = hash_password("changed meanwhile", CHEAP_COST)
    set_user(app, "Dana Reyes", password_hash=changed)
    with writing(), database(app).session_factory() as session, session.begin():
        assert not passwords.replace_password_hash(
            session, dana.id, dana.password_hash or "", hash_password("demo-password", CHEAP_COST)
        )
    assert stored(app, email=DANA).password_hash == changed


def test_the_first_sign_in_makes_the_dummy_hash_whether_or_not_the_account_exists(
    make_app: Any, district: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dummy is made once, lazily: if only an unknown email made it, the first such sign-in
    would take longer than a known one and tell them apart."""
    made: list[str] = []
    real = passwords.hash_password

    def counting(secret: str, cost: HashCost | None = None) -> str:
        made.append(secret)
        return real(secret, cost)

    monkeypatch.setattr(passwords, "hash_password", counting)
    assert sign_in(make_app().test_client(), DANA, "wrong password").status_code == 200
    known = len(made)
    made.clear()
    unknown_email = "nobody@demo-district.example"
    assert sign_in(make_app().test_client(), unknown_email, "wrong password").status_code == 200
    assert known == len(made) == 1


# Password rules


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "Use at least 12 characters."),
        ("x" * 257, "Use at most 256 characters."),
        ("dana.reyes@example.test", "Do not use your email address as the password."),
        ("DANA.REYES@example.test", "Do not use your email address as the password."),
        ("dana.reyes.example", None),
        ("qwertyqwerty", "This password is on a list of commonly used passwords. Choose another."),
        ("QwertyQwerty", "This password is on a list of commonly used passwords. Choose another."),
        ("1qaz2wsx3edc", "This password is on a list of commonly used passwords. Choose another."),
        ("test-password-123", None),
        ("x" * 256, None),
        ("a long typed password", None),
    ],
)
def test_password_rules(password: str, problem: str | None) -> None:
    assert password_problem(password, "dana.reyes@example.test") == problem


def test_the_local_part_of_the_email_is_refused() -> None:
    problem = password_problem("margaret.hamilton", "Margaret.Hamilton@example.test")
    assert problem == "Do not use your email address as the password."


def test_the_common_list_is_shipped_and_read_once() -> None:
    listed = passwords.common_passwords()
    assert len(listed) > 9000 and "password" in listed and "qwertyqwerty" in listed
    assert passwords.common_passwords() is listed


@pytest.mark.parametrize(
    ("password", "words"),
    [
        ("too short", "Use at least 12 characters."),
        ("qwerty123456", "commonly used passwords"),
        ("new.person@district.test", "Do not use your email address"),
    ],
)
def test_users_create_refuses_a_password_against_the_rules(
    app: Flask, password: str, words: str
) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create", "--email", "new.person@district.test", "--name", "New"]
        + ["--role", "admin"],
        env={"KIOSK_NEW_PASSWORD": password},
    )
    assert result.exit_code != 0
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: the password was not accepted.") and words in line
    with database(app).session_factory() as session:
        assert session.scalar(select(User).where(User.email == "new.person@district.test")) is None


def test_users_create_hashes_an_accepted_password_with_argon2id(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create", "--email", "new.person@district.test", "--name", "New"]
        + ["--role", "admin"],
        env={"KIOSK_NEW_PASSWORD": "a long typed password"},
    )
    assert result.exit_code == 0, result.output
    hashed = stored(app, email="new.person@district.test").password_hash
    assert hashed is not None and hashed.startswith("$argon2id$")
    assert (
        sign_in(app.test_client(), "new.person@district.test", "a long typed password").status_code
        == 302
    )


# PINs at the desk


def choose(client: FlaskClient, app: Flask, name: str) -> None:
    user = stored(app, display_name=name)
    token = csrf_token(client, "/desk/staff")
    client.post("/desk/staff", data={"csrf_token": token, "user": user.public_id})


def send_pin(client: FlaskClient, pin: str) -> Any:
    token = csrf_token(client, "/desk/staff/pin")
    return client.post("/desk/staff/pin", data={"csrf_token": token, "pin": pin})


def words(response: Any) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def desk(app: Flask, district: Any) -> FlaskClient:
    """A Lincoln kiosk with an open record and Pat Lee chosen to type a PIN."""
    client, _ = enroll_client(app, LINCOLN)
    assert tap_start(client).status_code == 302
    choose(client, app, "Pat Lee")
    return client


def lock_events(app: Flask) -> list[EncounterEvent]:
    with database(app).session_factory() as session:
        return list(
            session.scalars(select(EncounterEvent).where(EncounterEvent.kind == "staff_pin_locked"))
        )


def test_an_older_pin_hash_is_replaced_at_the_desk(app: Flask, desk: FlaskClient) -> None:
    set_user(app, "Pat Lee", pin_hash=generate_password_hash(PAT_PIN, method="scrypt"))
    assert send_pin(desk, PAT_PIN).status_code == 302
    new = stored(app, display_name="Pat Lee").pin_hash
    assert new is not None and new.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert passwords.verify(new, PAT_PIN)


def test_wrong_pins_count_down_then_lock_that_name(app: Flask, desk: FlaskClient) -> None:
    for left in (4, 3, 2):
        assert f"{left} tries left for this name." in words(send_pin(desk, "000000"))
    assert "1 try left for this name." in words(send_pin(desk, "000000"))
    locked = words(send_pin(desk, "000000"))
    assert "Too many wrong PINs: this name is locked for 15 minutes." in locked
    assert "The record continues without it." in locked
    assert "This name is locked" in words(send_pin(desk, PAT_PIN))
    assert len(lock_events(app)) == 1


def test_a_wrong_pin_is_forgotten_fifteen_minutes_after_the_last(
    app: Flask, desk: FlaskClient, clock: Any
) -> None:
    for _ in range(4):
        send_pin(desk, "000000")
    clock.set_offset(15 * 60)
    assert "4 tries left for this name." in words(send_pin(desk, "000000"))
    clock.set_offset(15 * 60 + 14 * 60)  # within 15 minutes of the last: still counted
    assert "3 tries left for this name." in words(send_pin(desk, "000000"))
    assert lock_events(app) == []


def test_one_mistyped_pin_a_day_never_locks(app: Flask, desk: FlaskClient, clock: Any) -> None:
    for day in range(10):
        clock.set_offset(day * 24 * 3600)
        assert "4 tries left for this name." in words(send_pin(desk, "000000"))
    assert lock_events(app) == []


def test_the_lock_ends_after_fifteen_minutes(app: Flask, desk: FlaskClient, clock: Any) -> None:
    for _ in range(5):
        send_pin(desk, "000000")
    clock.set_offset(14 * 60)
    assert "This name is locked" in words(send_pin(desk, PAT_PIN))
    clock.set_offset(15 * 60)
    assert send_pin(desk, PAT_PIN).status_code == 302
    pat = stored(app, display_name="Pat Lee")
    assert (pat.pin_failures, pat.pin_failed_at, pat.pin_locked_until) == (0, None, None)


@pytest.mark.parametrize(
    ("failures_before", "answers"),
    [
        # Both send the 5th wrong PIN: one locks the name, the other finds it locked.
        (4, ["This name is locked after too many wrong PINs.", "this name is locked for 15"]),
        # The 4th and the 5th at once: both count, and the 5th locks.
        (3, ["1 try left for this name.", "this name is locked for 15"]),
    ],
)
def test_wrong_pins_sent_at_once_from_two_kiosks_lock_the_person_once(
    app: Flask, district: Any, failures_before: int, answers: list[str]
) -> None:
    kiosks = [enroll_client(app, LINCOLN)[0] for _ in range(2)]
    for client in kiosks:
        assert tap_start(client).status_code == 302
        choose(client, app, "Pat Lee")
    set_user(app, "Pat Lee", pin_failures=failures_before, pin_failed_at=now_utc())
    tokens = [csrf_token(client, "/desk/staff/pin") for client in kiosks]

    def wrong_pin(client: FlaskClient, token: str) -> Any:
        return lambda: client.post("/desk/staff/pin", data={"csrf_token": token, "pin": "000000"})

    results = together(*(wrong_pin(c, t) for c, t in zip(kiosks, tokens, strict=True)))
    assert [r.status_code for r in results] == [422, 422]
    pages = [words(r) for r in results]
    for expected in answers:
        assert sum(expected in page for page in pages) == 1, (expected, pages)
    assert len(lock_events(app)) == 1
    pat = stored(app, display_name="Pat Lee")
    assert pat.pin_failures == 0
    assert pat.pin_locked_until is not None and pat.pin_locked_until > now_utc()
    assert pat.pin_locked_until <= now_utc() + timedelta(minutes=15)


def test_the_tap_the_alert_and_the_script_work_while_a_person_is_locked(
    app: Flask, desk: FlaskClient
) -> None:
    for _ in range(5):
        send_pin(desk, "000000")
    other, _ = enroll_client(app, LINCOLN)
    before = len(outbox_rows(app))
    assert tap_start(other).status_code == 302
    assert len(encounters(app)) == 2
    assert len(outbox_rows(app)) > before  # the district office is alerted
    assert "Say this" in other.get("/desk/").get_data(as_text=True)
    assert other.get("/desk/status.json").get_json()["open"] is True
    # The locked name is refused calmly there too; someone else identifies.
    choose(other, app, "Pat Lee")
    assert "This name is locked" in words(send_pin(other, PAT_PIN))
    choose(other, app, "Sam Ortiz")
    assert send_pin(other, "234567").status_code == 302
    # The first kiosk's record and script carry on.
    assert "Say this" in desk.get("/desk/").get_data(as_text=True)
