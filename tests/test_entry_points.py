"""The command line and gunicorn as an administrator runs them: `.venv/bin/flask --app app`
and `.venv/bin/gunicorn -c gunicorn.conf.py app:app` from this checkout, in subprocesses with
a scratch instance folder and nothing but the settings each test gives."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import click
import pytest

from kiosk import cli
from kiosk.config import KEY_NAMES
from kiosk.startup import RUN_WITHOUT_SETTINGS
from tests.conftest import CHEAP_COST_ENV, free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def scratch_env(instance: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "FLASK_"))}
    env.update({"KIOSK_INSTANCE_PATH": str(instance), "PYTHONUNBUFFERED": "1"})
    env.update(settings)
    return env


def flask(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one line on stderr, and no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def app_commands() -> click.Group:
    group = click.Group()
    cli.init_app(type("Holder", (), {"cli": group})())  # type: ignore[arg-type]
    return group


def leaf_commands() -> list[tuple[str, ...]]:
    """Every command of the app, as the words that run it."""
    found: list[tuple[str, ...]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found.append(path)

    walk(app_commands(), ())
    return sorted(found)


# A value for each option some command requires.
EXAMPLES = {
    "school": "Oak School",
    "name": "Oak School",
    "display_name": "Dana",
    "address": "dana@x.test",
    "roles": "admin",
    "zone_name": "UTC",
    "kiosk_ref": "1",
    "contact_ref": "1",
    "version_id": "1",
    "pack_file": "pack.json",
    "email": "dana@x.test",
    "role": "admin",
    "grants": "admin",
    "label": "SIS export",
    "token_id": "1",
    "public_id": "abc123",
    "reason": "Notice of claim",
}


def required_arguments(path: tuple[str, ...], folder: Path) -> list[str]:
    """The command's required options and arguments, with example values (folder: an existing
    one), so that only the settings can stop it."""
    examples = {**EXAMPLES, "folder": str(folder), "path": str(folder / "exported-keys.json")}
    command: Any = app_commands()
    for name in path:
        command = command.commands.get(name) if isinstance(command, click.Group) else None
    arguments: list[str] = []
    for param in getattr(command, "params", []):
        if param.required:
            value = examples[str(param.name)]
            arguments += [value] if isinstance(param, click.Argument) else [param.opts[0], value]
    return arguments


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def configured(instance: Path) -> dict[str, str]:
    """A migrated scratch SQLite instance with keys from `keys create`, in demo mode."""
    env = scratch_env(instance, KIOSK_DEMO="1", **CHEAP_COST_ENV)
    for args in (("keys", "create"), ("db", "upgrade")):
        result = flask(env, *args)
        assert result.returncode == 0, result.stderr
    result = flask(env, "schools", "create", "--name", "Oak School", "--timezone", "UTC")
    assert result.returncode == 0, result.stderr
    return env


def test_keys_create_works_before_any_key_and_never_overwrites(instance: Path) -> None:
    env = scratch_env(instance)
    first = flask(env, "keys", "create")
    assert first.returncode == 0, first.stderr
    path = instance / "keys.json"
    assert str(path) in first.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = json.loads(path.read_text())
    assert sorted(keys) == sorted(KEY_NAMES)
    # With keys but still no SMTP settings: kept as they are.
    again = flask(env, "keys", "create")
    assert again.returncode == 0, again.stderr
    assert json.loads(path.read_text()) == keys


def test_keys_create_refuses_a_damaged_keys_file_in_one_line(instance: Path) -> None:
    instance.mkdir()
    (instance / "keys.json").write_text("{not json")
    line = one_error_line(flask(scratch_env(instance), "keys", "create"))
    assert "keys.json cannot be read as keys" in line
    assert (instance / "keys.json").read_text() == "{not json"


@pytest.mark.parametrize(
    "args",
    [("--help",), ("outbox", "run", "--help"), ("keys", "--help"), ("users", "create", "--help")],
)
def test_help_needs_no_settings(instance: Path, args: tuple[str, ...]) -> None:
    result = flask(scratch_env(instance), *args)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and result.stderr == ""
    if args == ("--help",):
        for group in ("contacts", "db", "keys", "outbox", "users"):
            assert f"  {group} " in result.stdout


@pytest.mark.slow
def test_every_command_stops_in_one_line_without_settings(instance: Path, tmp_path: Path) -> None:
    env = scratch_env(instance)
    commands = [path for path in leaf_commands() if path not in RUN_WITHOUT_SETTINGS]
    assert ("outbox", "run") in commands and ("users", "create") in commands
    for path in [*commands, ("routes",), ("shell",)]:
        line = one_error_line(flask(env, *path, *required_arguments(path, tmp_path)))
        assert line.startswith("Error: missing keys: KIOSK_SECRET_KEY"), (path, line)
        assert "keys create" in line


@pytest.mark.parametrize(
    ("settings", "named", "secret"),
    [
        ({}, "KIOSK_SMTP_HOST and KIOSK_MAIL_FROM are required", None),
        ({"KIOSK_DEMO": "1", "KIOSK_SMTP_PORT": "smtp"}, "KIOSK_SMTP_PORT", None),
        ({"KIOSK_DEMO": "1", "KIOSK_DELIVERY": "sometimes"}, "KIOSK_DELIVERY", None),
        (
            {"KIOSK_DEMO": "1", "KIOSK_DATABASE_URL": "postgres:/kiosk:hunter22@db/kiosk"},
            "KIOSK_DATABASE_URL is not a database URL",
            "hunter22",
        ),
        ({"KIOSK_DEMO": "1", "KIOSK_BASE_URL": "kiosk.district.test"}, "KIOSK_BASE_URL", None),
        (
            {
                "KIOSK_DEMO": "1",
                "KIOSK_SMS_BASE_URL": "https://sms.test",
                "KIOSK_SMS_AUTH_TOKEN": "tok-3141",
            },
            "KIOSK_SMS_ACCOUNT_SID, KIOSK_SMS_FROM missing",
            "tok-3141",
        ),
    ],
)
def test_a_bad_setting_is_named_in_one_line_without_its_value(
    instance: Path, settings: dict[str, str], named: str, secret: str | None
) -> None:
    env = scratch_env(instance)
    assert flask(env, "keys", "create").returncode == 0
    env.update(settings)
    line = one_error_line(flask(env, "db", "upgrade"))
    assert named in line
    if secret:
        assert secret not in line


def test_a_database_that_cannot_be_reached_is_one_line(instance: Path) -> None:
    env = scratch_env(instance)
    assert flask(env, "keys", "create").returncode == 0
    env["KIOSK_DATABASE_URL"] = "postgresql+psycopg://kiosk:pw-2718@127.0.0.1:1/kiosk"
    env["KIOSK_DEMO"] = "1"
    line = one_error_line(flask(env, "db", "upgrade"))
    assert line.startswith("Error: the database (KIOSK_DATABASE_URL) could not be used:"), line
    assert "127.0.0.1" in line and "pw-2718" not in line
    line = one_error_line(flask(env, "audit", "verify"))
    assert "could not be used" in line


def gunicorn(
    env: dict[str, str], seconds: float = 30
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds,
    )
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "missing keys: KIOSK_SECRET_KEY"),
        (
            {f"KIOSK_{name}": "k" for name in KEY_NAMES},
            "KIOSK_SMTP_HOST",
        ),
        ({"KIOSK_DEMO": "1", "KIOSK_WORKERS": "two"}, "KIOSK_WORKERS must be a whole number"),
    ],
)
def test_gunicorn_stops_at_once_on_a_bad_setting(
    instance: Path, settings: dict[str, str], named: str
) -> None:
    env = scratch_env(instance, PORT=str(free_port()), **settings)
    if settings.get("KIOSK_DEMO"):
        assert flask(env, "keys", "create").returncode == 0
    result, seconds = gunicorn(env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Booting worker" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "settings:" in line]
    assert len(errors) == 1 and named in errors[0], result.stderr
    assert seconds < 20


def test_passwords_and_pins_are_refused_as_arguments(configured: dict[str, str]) -> None:
    base = ("users", "create", "--name", "Dana", "--role", "designee")
    line = one_error_line(
        flask(configured, *base, "--email", "d@x.test", "--password", "pw-123456")
    )
    assert "not taken on the command line" in line and "KIOSK_NEW_PASSWORD" in line
    line = one_error_line(flask(configured, *base, "--pin", "123456"))
    assert "not taken on the command line" in line and "KIOSK_NEW_PIN" in line


def users(env: dict[str, str]) -> list[tuple[Any, ...]]:
    path = Path(env["KIOSK_INSTANCE_PATH"]) / "kiosk.db"
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT email, password_hash IS NOT NULL, pin_hash IS NOT NULL FROM users ORDER BY id"
        ).fetchall()


def test_passwords_and_pins_come_from_a_prompt_or_the_environment(
    configured: dict[str, str],
) -> None:
    typed = flask(
        configured,
        *("users", "create", "--name", "Dana", "--role", "designee", "--email", "dana@x.test"),
        *("--school", "Oak School"),
        stdin="correct horse\ncorrect horse\n",
    )
    assert typed.returncode == 0, typed.stderr
    assert "correct horse" not in typed.stdout + typed.stderr
    from_env = flask(
        {**configured, "KIOSK_NEW_PASSWORD": "battery staple", "KIOSK_NEW_PIN": "246802"},
        *("users", "create", "--name", "Lee", "--role", "counsel", "--email", "lee@x.test"),
        "--pin",
    )
    assert from_env.returncode == 0, from_env.stderr
    pin = flask(
        configured,
        *("users", "create", "--name", "Pat", "--role", "front_desk", "--pin"),
        *("--school", "Oak School"),
        stdin="135790\n135790\n",
    )
    assert pin.returncode == 0, pin.stderr
    mismatch = flask(
        configured,
        *("users", "create", "--name", "Kim", "--role", "front_desk", "--pin"),
        stdin="135790\n097531\n",
    )
    assert mismatch.returncode != 0
    assert users(configured) == [
        ("dana@x.test", 1, 0),
        ("lee@x.test", 1, 1),
        (None, 0, 1),
    ]


def test_an_sms_contact_is_refused_until_the_gateway_is_set(configured: dict[str, str]) -> None:
    sms = ("contacts", "add", "--school", "Oak School", "--name", "Backup", "--level", "2")
    sms += ("--channel", "sms", "--address", "+15550100202")
    line = one_error_line(flask({**configured, "KIOSK_SMS_BASE_URL": ""}, *sms))
    assert "SMS contacts need the SMS gateway" in line
    assert "KIOSK_SMS_BASE_URL, KIOSK_SMS_ACCOUNT_SID, KIOSK_SMS_AUTH_TOKEN, KIOSK_SMS_FROM" in line
    gateway = {
        "KIOSK_SMS_BASE_URL": "http://127.0.0.1:9",
        "KIOSK_SMS_ACCOUNT_SID": "AC0123",
        "KIOSK_SMS_AUTH_TOKEN": "token-2718",
        "KIOSK_SMS_FROM": "+15550100100",
    }
    added = flask({**configured, **gateway}, *sms)
    assert added.returncode == 0, added.stderr


def test_contacts_and_users_are_linked_by_email_in_either_order(
    configured: dict[str, str],
) -> None:
    env = {**configured, "KIOSK_NEW_PASSWORD": "long enough to use"}
    add = ("contacts", "add", "--school", "Oak School", "--name", "Dana", "--email")
    create = ("users", "create", "--name", "Dana", "--role", "reviewer", "--email")
    for args in (
        (*add, "First@X.test"),
        (*create, "first@x.test"),
        (*create, "second@x.test"),
        (*add, "second@x.test"),
    ):
        result = flask(env, *args)
        assert result.returncode == 0, result.stderr
    path = Path(env["KIOSK_INSTANCE_PATH"]) / "kiosk.db"
    with sqlite3.connect(path) as connection:
        linked = connection.execute(
            "SELECT contacts.address, users.email FROM contacts "
            "JOIN users ON users.id = contacts.user_id ORDER BY contacts.id"
        ).fetchall()
    assert linked == [("first@x.test", "first@x.test"), ("second@x.test", "second@x.test")]
