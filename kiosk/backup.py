"""`flask --app app backup create DIR` and `backup restore DIR`: a consistent snapshot of the
database with a manifest of checksums, and its restore into an empty instance.

SQLite is copied with its online-backup API (a consistent copy while the app runs);
PostgreSQL with `pg_dump --format=custom`, restored with `pg_restore`. Keys are never in a
backup: `flask --app app keys export FILE` writes them to a file of their own, on request,
to be kept apart from the backups (whoever holds both can read every record).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import URL, make_url

from kiosk.clock import now_utc
from kiosk.config import KEY_NAMES, KEYS_FILE

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "kiosk.db"
PG_FILE = "kiosk.pgdump"


class BackupError(RuntimeError):
    """The backup or restore cannot go on; the message says why and what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _private_folder(folder: Path) -> None:
    """An empty folder of our own (0700), or refuse: a backup never overwrites another."""
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty; choose a new folder for this backup")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)


def _libpq(url: URL) -> tuple[list[str], dict[str, str]]:
    """pg_dump / pg_restore connection arguments, with the password in the environment."""
    args = ["--dbname", url.database or ""]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _run(command: list[str], env: dict[str, str]) -> None:
    # The program is ours (pg_dump, pg_restore), run with an argument list and no shell;
    # its arguments come from the settings.
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603  # nosec B603
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"{command[0]} failed: {last}")


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("the SQLite database must be a file")
    return Path(url.database)


def _revision(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        engine.dispose()


def create(database_url: str, folder: Path, now: datetime) -> dict[str, Any]:
    """Write a consistent snapshot and its manifest to an empty folder; return the manifest."""
    url = make_url(database_url)
    _private_folder(folder)
    if url.get_backend_name() == "sqlite":
        target = folder / SQLITE_FILE
        source = sqlite3.connect(str(_sqlite_path(url)))
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(descriptor)
        copy = sqlite3.connect(str(target))
        try:
            source.backup(copy)  # one consistent step, while writers go on
        finally:
            copy.close()
            source.close()
        kind = "sqlite"
    elif url.get_backend_name() == "postgresql":
        args, env = _libpq(url)
        target = folder / PG_FILE
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
              "--file", str(target), *args], env)  # fmt: skip
        os.chmod(target, 0o600)
        kind = "postgresql"
    else:
        raise BackupError(f"no backup for {url.get_backend_name()} databases")
    manifest = {
        "format": FORMAT,
        "created_at": now.isoformat(),
        "database": kind,
        "revision": _revision(database_url),
        "files": {target.name: {"sha256": _sha256(target), "bytes": target.stat().st_size}},
        "keys": "not included: export them with `flask --app app keys export FILE`",
    }
    path = folder / MANIFEST
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
    return manifest


def check(folder: Path) -> dict[str, Any]:
    """Read the manifest and check every file against it; refuse a backup that changed."""
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder} has no readable {MANIFEST}: is it a backup?") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    for name, expected in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            raise BackupError(f"{name} is missing from the backup")
        if _sha256(path) != expected["sha256"]:
            raise BackupError(f"{name} does not match its checksum: the backup was changed")
    return manifest


def _empty(database_url: str) -> bool:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return not inspect(connection).get_table_names()
    finally:
        engine.dispose()


def restore(database_url: str, folder: Path) -> dict[str, Any]:
    """Restore a checked backup into an empty database; return its manifest."""
    manifest = check(folder)
    url = make_url(database_url)
    kind = manifest["database"]
    if kind != {"sqlite": "sqlite", "postgresql": "postgresql"}.get(url.get_backend_name()):
        raise BackupError(
            f"this backup is of a {kind} database; KIOSK_DATABASE_URL names a "
            f"{url.get_backend_name()} one"
        )
    if kind == "sqlite":
        target = _sqlite_path(url)
        if target.exists() and not _empty(database_url):
            raise BackupError(f"{target} already holds data; restore into an empty instance")
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(descriptor)
        source = sqlite3.connect(str(folder / SQLITE_FILE))
        copy = sqlite3.connect(str(target))
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
    else:
        if not _empty(database_url):
            raise BackupError("the database already holds tables; restore into an empty one")
        if shutil.which("pg_restore") is None:
            raise BackupError("pg_restore is not installed (apt-get install postgresql-client)")
        args, env = _libpq(url)
        _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", *args,
              str(folder / PG_FILE)], env)  # fmt: skip
    return manifest


# --------------------------------------------------------------------------- commands

backup_cli = AppGroup("backup", help="Back up the database, and restore it.")


@backup_cli.command("create")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def backup_create(folder: Path) -> None:
    """Write a consistent snapshot of the database to FOLDER (new or empty), with checksums."""
    try:
        manifest = create(current_app.config["DATABASE_URL"], folder, now_utc())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    for name, entry in manifest["files"].items():
        click.echo(f"backup: {folder / name} ({entry['bytes']} bytes, sha256 {entry['sha256']})")
    click.echo("backup: keys are not in it; keep `flask --app app keys export` apart from it")


@backup_cli.command("restore")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def backup_restore(folder: Path) -> None:
    """Restore the backup in FOLDER into this instance's empty database, then migrate it."""
    from kiosk.cli import upgrade_database

    try:
        manifest = restore(current_app.config["DATABASE_URL"], folder)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    upgrade_database(current_app)
    click.echo(f"restored: the backup of {manifest['created_at']} ({manifest['database']})")
    click.echo("next: `flask --app app audit verify` with the keys of that instance")


@click.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keys_export(path: Path) -> None:
    """Write this instance's keys to PATH (mode 0600), to keep apart from the backups."""
    keys = {name: current_app.config[name] for name in KEY_NAMES}
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise click.ClickException(f"{path} exists; keys are never written over a file") from exc
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(keys, handle, indent=2)
    click.echo(f"keys: {path} (mode 0600); restore it as instance/{KEYS_FILE}")
