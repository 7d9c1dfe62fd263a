"""Backup and restore as an operator runs them: `flask --app app backup create DIR` on a live
instance, `keys export`, then `backup restore DIR` into a fresh, empty instance; the audit
chain verifies and a restored encounter reads back."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from kiosk.config import KEY_NAMES
from kiosk.models import Encounter, NamedPerson
from kiosk.webdb import database
from tests.conftest import csrf_token, tap_start

ROOT = Path(__file__).resolve().parents[1]
FLASK = ROOT / ".venv" / "bin" / "flask"
NAME = "Maria Backupson"


def environment(database_url: str, instance: Path, keys: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env.update(
        {
            "KIOSK_DATABASE_URL": database_url,
            "KIOSK_INSTANCE_PATH": str(instance),
            "KIOSK_DEMO": "1",
            **{f"KIOSK_{name}": value for name, value in keys.items()},
        }
    )
    return env


def flask(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(FLASK), "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def keys_of(app: Flask) -> dict[str, str]:
    return {name: app.config[name] for name in KEY_NAMES}


def record_something(app: Flask, kiosk_client: Any) -> str:
    """A tap and a named student, through the desk as a front-desk person would."""
    tap_start(kiosk_client)
    token = csrf_token(kiosk_client, "/desk/request")
    answer = kiosk_client.post(
        "/desk/request",
        data={
            "csrf_token": token,
            "request_kinds": ["student_access"],
            "person_name": NAME,
            "relation": "student",
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    with database(app).session_factory() as session:
        encounter = session.scalars(select(Encounter)).one()
        return encounter.public_id


def empty_database(template: str) -> tuple[str, Any]:
    """An empty database of the same kind: a new SQLite path, or a new PostgreSQL database."""
    url = make_url(template)
    if url.get_backend_name() == "sqlite":
        return "", None
    name = f"kiosk_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def test_backup_and_restore_into_a_fresh_instance(
    app: Flask, district: Any, kiosk_client: Any, tmp_path: Path
) -> None:
    public_id = record_something(app, kiosk_client)
    keys = keys_of(app)
    live = environment(app.config["DATABASE_URL"], tmp_path / "instance", keys)

    backup_dir = tmp_path / "backups" / "monday"
    made = flask(live, "backup", "create", str(backup_dir))
    assert "keys are not in it" in made.stdout
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    (name,) = manifest["files"]
    assert oct((backup_dir / name).stat().st_mode & 0o777) == "0o600"
    assert oct(backup_dir.stat().st_mode & 0o777) == "0o700"
    assert manifest["revision"]
    assert not any(value in (backup_dir / "manifest.json").read_text() for value in keys.values())

    key_file = tmp_path / "keys-export.json"
    flask(live, "keys", "export", str(key_file))
    assert json.loads(key_file.read_text()) == keys
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert flask(live, "keys", "export", str(key_file), ok=False).returncode != 0

    # A new server: the exported keys put in place, an empty database.
    fresh_instance = tmp_path / "fresh"
    fresh_instance.mkdir()
    (fresh_instance / "keys.json").write_text(key_file.read_text())
    target, drop = empty_database(app.config["DATABASE_URL"])
    target = target or f"sqlite:///{tmp_path / 'fresh' / 'kiosk.db'}"
    try:
        fresh = environment(target, fresh_instance, {})
        restored = flask(fresh, "backup", "restore", str(backup_dir))
        assert "restored" in restored.stdout
        assert "Record intact" in flask(fresh, "audit", "verify").stdout

        engine = create_engine(target)
        with engine.connect() as connection:
            found = connection.execute(
                select(Encounter.id).where(Encounter.public_id == public_id)
            ).scalar_one()
        engine.dispose()
        from kiosk import create_app

        copy = create_app({**app.config, "DATABASE_URL": target})
        with database(copy).session_factory() as session:
            names = [
                person.name
                for person in session.scalars(
                    select(NamedPerson).where(NamedPerson.encounter_id == found)
                )
            ]
        database(copy).engine.dispose()
        assert names == [NAME]

        # A second restore over data is refused.
        again = flask(fresh, "backup", "restore", str(backup_dir), ok=False)
        assert again.returncode != 0 and "restore into an empty" in again.stderr
    finally:
        if drop is not None:
            drop()


def test_a_changed_backup_is_refused(app: Flask, district: Any, tmp_path: Path) -> None:
    live = environment(app.config["DATABASE_URL"], tmp_path / "instance", keys_of(app))
    backup_dir = tmp_path / "backup"
    flask(live, "backup", "create", str(backup_dir))
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    (name,) = manifest["files"]
    with (backup_dir / name).open("ab") as handle:
        handle.write(b"\0")
    target, drop = empty_database(app.config["DATABASE_URL"])
    target = target or f"sqlite:///{tmp_path / 'fresh.db'}"
    try:
        refused = flask(
            environment(target, tmp_path / "fresh", keys_of(app)),
            "backup", "restore", str(backup_dir), ok=False,
        )  # fmt: skip
        assert refused.returncode == 1
        assert "does not match its checksum" in refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        if drop is not None:
            drop()


def test_a_backup_never_writes_into_a_folder_in_use(
    app: Flask, district: Any, tmp_path: Path
) -> None:
    live = environment(app.config["DATABASE_URL"], tmp_path / "instance", keys_of(app))
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("keep me")
    refused = flask(live, "backup", "create", str(used), ok=False)
    assert refused.returncode == 1 and "not empty" in refused.stderr
    assert (used / "notes.txt").read_text() == "keep me"


@pytest.fixture(autouse=True)
def _pg_tools() -> None:
    if os.environ.get("KIOSK_TEST_DATABASE_URL") and not Path("/usr/bin/pg_dump").exists():
        pytest.fail("pg_dump is needed for the PostgreSQL backup tests")
