"""Fixtures: a fresh database per test (SQLite template copy, or PostgreSQL truncate), the app,
clients for a kiosk and for the office, and a real SMTP server on loopback."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from kiosk import create_app, migrate
from kiosk.auth.devices import enroll, issue_enrollment
from kiosk.auth.passwords import HashCost, cost_from
from kiosk.auth.policy import DEVICE_COOKIE
from kiosk.clock import now_utc
from kiosk.db import make_engine, writing
from kiosk.delivery import hooks_for
from kiosk.demo import seed
from kiosk.models import Base, Encounter, EncounterEvent, Kiosk, OutboxMessage, School
from kiosk.notify.channels import SmtpSender, senders_from_settings
from kiosk.notify.sending import Policy
from kiosk.notify.worker import deliver_due
from kiosk.protocol.scriptstore import current_script_version
from kiosk.webdb import database

# argon2id at its smallest, for speed: the suite hashes many passwords and PINs. The app's
# default is the real cost (tests/test_passwords.py checks it).
CHEAP_COST = HashCost(time_cost=1, memory_kib=8, parallelism=1)
CHEAP_COST_SETTINGS = {"PASSWORD_TIME_COST": 1, "PASSWORD_MEMORY_KIB": 8, "PASSWORD_PARALLELISM": 1}
CHEAP_COST_ENV = {f"KIOSK_{name}": str(value) for name, value in CHEAP_COST_SETTINGS.items()}
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a network connection beyond this machine: every server a
    test talks to (SMTP, webhooks, the SMS gateway, the app) runs on loopback."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(str(address[0])):
            raise AssertionError(f"a test tried to connect beyond loopback: {address[0]}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


REQUIRE_ALL = os.environ.get("KIOSK_TEST_REQUIRE_ALL") == "1"


def key_environment(app: Flask) -> dict[str, str]:
    """The app's keys as the KIOSK_* variables a subprocess of the same instance needs."""
    from kiosk.config import KEY_NAMES

    return {f"KIOSK_{name}": app.config[name] for name in KEY_NAMES}


def stop_process(process: subprocess.Popen[Any], grace: float = 15.0) -> None:
    """Stop a server started in its own session: SIGTERM its group, then SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate once per run: a SQLite template file, or a uniquely named PostgreSQL database."""
    pg_url = os.environ.get("KIOSK_TEST_DATABASE_URL")
    if pg_url:
        base = make_url(pg_url)
        name = f"kiosk_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        return
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    yield str(path)


@pytest.fixture
def database_url(template_database: str, tmp_path: Any) -> str:
    """A clean, migrated database for this test."""
    if template_database.startswith("postgresql"):
        engine = create_engine(template_database)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return template_database
    target = tmp_path / "kiosk.db"
    shutil.copyfile(template_database, target)
    return f"sqlite:///{target}"


def settings(database_url: str, instance: str, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "DEMO": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "ENCRYPTION_KEY": "test-encryption-key",
        "AUDIT_KEY": "test-audit-key",
        "INDEX_KEY": "test-index-key",
        **CHEAP_COST_SETTINGS,
        "DELIVERY": "off",
        "BASE_URL": "http://kiosk.test",
        "SMTP_HOST": "",
        "SMTP_TIMEOUT": 2.0,
        "MAIL_FROM": "alerts@district.test",
    }
    values.update(extra)
    return values


@pytest.fixture
def make_app(database_url: str, tmp_path: Any) -> Iterator[Any]:
    apps: list[Flask] = []

    def factory(**extra: Any) -> Flask:
        os.environ["KIOSK_INSTANCE_PATH"] = str(tmp_path / "instance")
        app = create_app(settings(database_url, str(tmp_path / "instance"), **extra))
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        database(app).engine.dispose()
    os.environ.pop("KIOSK_INSTANCE_PATH", None)


@pytest.fixture
def app(make_app: Any) -> Flask:
    return make_app()


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """A session for arranging and checking data outside requests."""
    with writing():
        session = database(app).session_factory()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def district(app: Flask) -> dict[str, Any]:
    """Seed the demo district (two schools, contacts, staff with PINs)."""
    with writing(), database(app).session_factory() as session, session.begin():
        seed(session, cost_from(app.config))
        current_script_version(session, now_utc())
        schools = session.scalars(select(School).order_by(School.id)).all()
        return {"school_ids": [s.id for s in schools], "school_names": [s.name for s in schools]}


def tamper(app: Flask, *statements: Any) -> None:
    """Change rows straight in the database, as someone with its owner's rights would: on
    PostgreSQL going round the triggers that refuse UPDATE and DELETE on the chain."""
    with writing(), database(app).session_factory() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            session.execute(statement)


def enroll_client(app: Flask, school_name: str) -> tuple[FlaskClient, int]:
    """Enroll a kiosk for the school and return a client that carries its device cookie."""
    with writing(), database(app).session_factory() as session, session.begin():
        school = session.scalar(select(School).where(School.name == school_name))
        assert school is not None
        kiosk, token = issue_enrollment(session, school, now_utc(), 1)
        result = enroll(session, token, now_utc())
        assert result is not None
        kiosk_id, secret = kiosk.id, result[1]
    client = app.test_client()
    client.set_cookie(DEVICE_COOKIE, secret, domain="localhost")
    return client, kiosk_id


@pytest.fixture
def kiosk_client(app: Flask, district: dict[str, Any]) -> FlaskClient:
    client, _ = enroll_client(app, district["school_names"][0])
    return client


@pytest.fixture
def kiosk_row(app: Flask, kiosk_client: FlaskClient) -> Kiosk:
    with database(app).session_factory() as session:
        return session.scalars(select(Kiosk).order_by(Kiosk.id.desc())).first()


CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str) -> str:
    """Read a CSRF token from a page, as a browser would."""
    page = client.get(path).get_data(as_text=True)
    match = CSRF_PATTERN.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def start_fields(page: str) -> dict[str, str]:
    fields = {}
    for name in ("nonce", "start_token"):
        match = re.search(rf'id="{name}" name="{name}" type="hidden" value="([^"]*)"', page)
        assert match, f"no {name} on the idle page"
        fields[name] = match.group(1)
    return fields


def tap_start(client: FlaskClient, channel: str = "in_person") -> Any:
    """Load the idle screen and tap the start control."""
    page = client.get("/desk/").get_data(as_text=True)
    return client.post("/desk/start", data={**start_fields(page), "channel": channel})


def outbox_rows(app: Flask) -> list[OutboxMessage]:
    """Every outbox row, oldest first."""
    with database(app).session_factory() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def encounters(app: Flask) -> list[Encounter]:
    """Every encounter, oldest first."""
    with database(app).session_factory() as session:
        return list(session.scalars(select(Encounter).order_by(Encounter.id)))


def events(app: Flask, encounter_id: int) -> list[EncounterEvent]:
    """One encounter's events, in order."""
    with database(app).session_factory() as session:
        return list(
            session.scalars(
                select(EncounterEvent)
                .where(EncounterEvent.encounter_id == encounter_id)
                .order_by(EncounterEvent.seq)
            )
        )


def the_encounter(app: Flask) -> Encounter:
    """The one encounter of a test that started one."""
    with database(app).session_factory() as session:
        return session.scalars(select(Encounter)).one()


def tap_at(app: Flask, school: str = "Lincoln Elementary School") -> None:
    """Enroll a kiosk at the school and tap its start control."""
    client, _ = enroll_client(app, school)
    assert tap_start(client).status_code == 302


def deliver(app: Flask, now: Any = None, parallel: int = 1, **policy: Any) -> int:
    """Run one delivery round the way the worker does (one message at a time by default, so
    that servers scripted to answer in order see the rows in order)."""
    return deliver_due(
        database(app).session_factory,
        senders_from_settings(app.config),
        now,
        hooks=hooks_for(app),
        policy=Policy(**policy) if policy else None,
        parallel=parallel,
    )


@dataclass
class SmtpSink:
    """A real SMTP server on loopback that keeps what it receives."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - the name the server library calls
        with self.lock:
            self.raw.append(envelope.content)
            self.messages.append(message_from_bytes(envelope.content))
        self.received.set()
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]


@contextlib.contextmanager
def running_smtp(port: int | None = None) -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd, threaded) on a loopback port, for as long as needed."""
    from aiosmtpd.controller import Controller

    port = port or free_port()
    sink = SmtpSink("127.0.0.1", port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    with running_smtp() as sink:
        yield sink


def smtp_settings(sink: SmtpSink | None = None, port: int | None = None) -> dict[str, Any]:
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port if port is not None else (sink.port if sink else free_port()),
        "SMTP_STARTTLS": False,
        "SMTP_TIMEOUT": 2.0,
        "MAIL_FROM": "alerts@district.test",
    }


__all__ = ["SmtpSender"]
