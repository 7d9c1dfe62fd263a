"""Names and free text are sealed at rest, bound to their row, and keys rotate in batches."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from kiosk import rotation
from kiosk.db import writing
from kiosk.models import Encounter, NamedPerson
from kiosk.sealing import SealError, blind_index, open_text, parse_keys
from kiosk.webdb import database
from tests.conftest import csrf_token, tap_start

NAME = "Quillonia Vantablackwood"
PURPOSE = "Asked where Zephyrine Oxtongue waits after class"
ADDRESS = "Marrowgate Lane 7713"
MESSAGE = "Keep Thistlewaite in the office"
DANA = "dana.reyes@demo-district.example"
PLANTED = (NAME, PURPOSE, "Zephyrine", "Oxtongue", ADDRESS, "Marrowgate", "Thistlewaite")


def plant(app: Flask, desk: FlaskClient) -> Encounter:
    """Type a name and free text through the real desk and office pages."""
    assert tap_start(desk).status_code in (200, 302)
    token = csrf_token(desk, "/desk/request")
    desk.post(
        "/desk/request",
        data={
            "csrf_token": token,
            "purpose": PURPOSE,
            "action": "add_person",
            "person_name": NAME,
            "relation": "student",
        },
    )
    desk.post(
        "/desk/document",
        data={
            "csrf_token": csrf_token(desk, "/desk/document"),
            "shown": "unsure",
            "names_addresses": ADDRESS,
        },
    )
    with database(app).session_factory() as session:
        encounter = session.scalars(select(Encounter)).one()
    office = app.test_client()
    office.post(
        "/login",
        data={
            "csrf_token": csrf_token(office, "/login"),
            "email": DANA,
            "password": "demo-password",
        },
    )
    page = f"/office/encounters/{encounter.public_id}"
    office.post(f"{page}/message", data={"csrf_token": csrf_token(office, page), "text": MESSAGE})
    record = office.get(page).get_data(as_text=True)
    # Sealed values read back on the page that shows them.
    assert NAME in record and PURPOSE in record and ADDRESS in record and MESSAGE in record
    return encounter


def assert_absent(blob: bytes, where: str) -> None:
    for word in PLANTED:
        for encoded in (word.encode(), word.encode("utf-16-le")):
            assert encoded not in blob, f"{word!r} found in {where}"


def test_names_and_free_text_never_reach_the_database_file(
    app: Flask, district: Any, kiosk_client: FlaskClient
) -> None:
    encounter = plant(app, kiosk_client)
    with database(app).session_factory() as session:
        person = session.scalars(select(NamedPerson)).one()
        assert person.name == NAME
        assert person.name_index == blind_index(
            app.config["INDEX_KEY"], "  quillonia  VANTABLACKWOOD"
        )
        stored = session.execute(text("SELECT purpose FROM encounters")).scalar_one()
        assert stored.startswith("sealed:v1:k1:")
        assert session.get(Encounter, encounter.id).purpose == PURPOSE  # type: ignore[union-attr]
    url = make_url(app.config["DATABASE_URL"])
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        files = [p for p in (path, Path(f"{path}-wal")) if p.exists()]
        assert Path(f"{path}-wal") in files  # the writes so far sit in the WAL
        for file in files:
            assert_absent(file.read_bytes(), file.name)
        return
    dump = subprocess.run(
        [
            "/usr/bin/pg_dump",
            "--data-only",
            url.set(drivername="postgresql").render_as_string(False),
        ],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    assert b"sealed:v1:k1:" in dump
    assert_absent(dump, "pg_dump")


def test_a_value_moved_to_another_row_or_column_does_not_open(
    app: Flask, district: Any, kiosk_client: FlaskClient
) -> None:
    encounter = plant(app, kiosk_client)
    keyring = app.extensions["kiosk_keyring"]
    with writing(), database(app).session_factory() as session, session.begin():
        sealed = session.execute(
            select(Encounter.__table__.c.purpose).where(Encounter.id == encounter.id)
        ).scalar_one()
        assert open_text(keyring, sealed, "encounters", "purpose", encounter.public_id) == PURPOSE
        with pytest.raises(SealError):
            open_text(keyring, sealed, "encounters", "purpose", "another-public-id")
        with pytest.raises(SealError):
            open_text(keyring, sealed, "encounters", "witnesses", encounter.public_id)
        other = Encounter(school_id=encounter.school_id, public_id="other-row")
        session.add(other)
        session.flush()
        session.execute(
            update(Encounter.__table__)
            .where(Encounter.id == other.id)
            .values(purpose=sealed, witnesses=sealed)
        )
        other_id = other.id
    with database(app).session_factory() as session, pytest.raises(SealError):
        session.get(Encounter, other_id)


def _stored(app: Flask) -> list[str]:
    with database(app).session_factory() as session:
        return [
            value
            for query in ("SELECT purpose FROM encounters", "SELECT name FROM named_people")
            for (value,) in session.execute(text(query))
            if value is not None
        ]


def test_rotation_stops_resumes_and_needs_the_old_key_until_done(
    make_app: Any, district: Any, kiosk_client: FlaskClient, tmp_path: Path
) -> None:
    app = kiosk_client.application
    plant(app, kiosk_client)
    # A row written before sealing existed: plain text, and indexed with another key.
    with writing(), database(app).session_factory() as session, session.begin():
        session.execute(
            text("UPDATE named_people SET name = :name, name_index = 'old'"), {"name": NAME}
        )
    with database(app).session_factory() as session:
        assert session.scalars(select(NamedPerson)).one().name == NAME  # plain still reads
    runner = app.test_cli_runner()
    result = runner.invoke(args=["keys", "rotate", "--batch-size", "1", "--max-batches", "1"])
    assert result.exit_code == 0, result.output
    assert "run rotate again to resume" in result.output
    keys_file = Path(app.instance_path) / "keys.json"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    keyring = parse_keys(json.loads(keys_file.read_text())["ENCRYPTION_KEY"])
    assert keyring.ids == ("k2", "k1")
    kinds = {
        value.split(":")[2] if value.startswith("sealed:") else "plain" for value in _stored(app)
    }
    assert "k2" in kinds and kinds - {"k2"}  # part done: the old key is still needed
    with database(app).session_factory() as session:
        assert rotation.keys_in_use(session)["k2"] >= 1
    retire = runner.invoke(args=["keys", "rotate", "--retire"])
    assert retire.exit_code != 0 and "still need" in retire.output

    result = runner.invoke(args=["keys", "rotate", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    assert "every value is on k2" in result.output
    assert {value.split(":")[2] for value in _stored(app)} == {"k2"}
    with database(app).session_factory() as session:
        assert set(rotation.keys_in_use(session)) == {"k2"}
        person = session.scalars(select(NamedPerson)).one()
        assert person.name == NAME
        assert person.name_index == blind_index(app.config["INDEX_KEY"], NAME)
    # Only the new key opens the rows now, and the old one may go.
    reader = make_app(ENCRYPTION_KEY=keyring.only_current().spec())
    with database(reader).session_factory() as session:
        assert session.scalars(select(Encounter)).one().purpose == PURPOSE
    assert runner.invoke(args=["keys", "rotate", "--retire"]).exit_code == 0
    assert parse_keys(json.loads(keys_file.read_text())["ENCRYPTION_KEY"]).ids == ("k2",)


def test_data_files_and_folders_are_private(make_app: Any, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        folder = tmp_path / "private" / "instance"
        app = make_app(DATABASE_URL=f"sqlite:///{folder / 'kiosk.db'}")
        from kiosk import migrate
        from kiosk.config import write_keys_file

        migrate.upgrade(app.config["DATABASE_URL"])
        with writing(), database(app).session_factory() as session, session.begin():
            session.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
        keys = write_keys_file(str(folder))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    for name in ("kiosk.db", "kiosk.db-wal", "kiosk.db-shm"):
        assert (folder / name).exists(), name
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
