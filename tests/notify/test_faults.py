"""Delivery faults with real servers: SMTP 4xx/5xx, a server that never answers, SMTP down during
many taps, a worker killed mid-send, and /healthz noticing that delivery has stalled."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from kiosk import clock
from kiosk.clock import now_utc
from kiosk.delivery import hooks_for
from kiosk.models import WorkerHeartbeat
from kiosk.notify.channels import senders_from_settings
from kiosk.notify.deliverer import Deliverer
from kiosk.notify.leases import record_heartbeat
from kiosk.notify.links import Links
from kiosk.notify.sending import Policy
from kiosk.notify.worker import deliver_due
from kiosk.protocol.escalation import escalate_due
from kiosk.webdb import database
from tests.conftest import (
    SmtpSink,
    deliver,
    enroll_client,
    free_port,
    settings,
    smtp_settings,
    tap_at,
    tap_start,
    the_encounter,
)
from tests.conftest import (
    outbox_rows as rows,
)

ROOT = Path(__file__).resolve().parents[2]


class RefusingSink(SmtpSink):
    """An SMTP server that answers DATA with the scripted replies first, then accepts."""

    def __init__(self, host: str, port: int, refusals: list[str]) -> None:
        super().__init__(host, port)
        self.refusals = list(refusals)
        self.refused = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - the name the server library calls
        with self.lock:
            if self.refusals:
                self.refused += 1
                return self.refusals.pop(0)
        return await super().handle_DATA(server, session, envelope)


def start_smtp(sink: SmtpSink) -> Any:
    from aiosmtpd.controller import Controller

    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    return controller


# --- SMTP replies ---------------------------------------------------------------------


@pytest.mark.parametrize("reply", ["421 4.3.0 Try again later", "451 4.3.0 Local problem"])
def test_smtp_4xx_then_success_is_retried_and_sent_once(
    make_app: Any, district: Any, reply: str
) -> None:
    sink = RefusingSink("127.0.0.1", free_port(), [reply])
    controller = start_smtp(sink)
    try:
        app = make_app(**smtp_settings(sink))
        tap_at(app)
        assert deliver(app) == 0
        [row] = rows(app)
        assert row.status == "pending" and reply[:3] in (row.last_error or "")
        assert deliver(app, now=row.next_attempt_at) == 1
    finally:
        controller.stop()
    [row] = rows(app)
    assert row.status == "sent" and row.attempts == 2
    assert sink.refused == 1
    assert sink.message_ids() == [f"<{row.idempotency_key}@district.test>"]


def test_smtp_550_fails_the_alert_and_escalates_at_once(make_app: Any, district: Any) -> None:
    sink = RefusingSink("127.0.0.1", free_port(), ["550 5.7.1 Rejected by policy"])
    controller = start_smtp(sink)
    try:
        app = make_app(**smtp_settings(sink))
        tap_at(app)
        links = Links.from_settings(app.config)
        factory = database(app).session_factory
        at = now_utc()
        assert escalate_due(factory, links, at) == 0  # level 2 is minutes away
        assert deliver(app, now=at) == 0
        [row] = rows(app)
        assert row.status == "failed" and "SMTP 550" in (row.last_error or "")
        encounter = the_encounter(app)
        assert encounter.next_escalation_at == at
        # The next escalation round escalates at once, minutes before the level-1 window ends.
        assert escalate_due(factory, links, at) == 1
        assert deliver(app, now=at) == 1
    finally:
        controller.stop()
    alert, escalation = rows(app)
    assert (escalation.kind, escalation.level, escalation.status) == ("escalation", 2, "sent")
    assert escalation.recipient == "morgan.blake@demo-district.example"
    assert the_encounter(app).escalation_level == 2


class BlackHole:
    """A TCP server that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.held.append(connection)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        for connection in self.held:
            connection.close()
        self.sock.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    server = BlackHole()
    server.thread.start()
    yield server
    server.close()


def test_smtp_server_that_never_answers_times_out_and_is_retried(
    make_app: Any, district: Any, black_hole: BlackHole
) -> None:
    app = make_app(**{**smtp_settings(port=black_hole.port), "SMTP_TIMEOUT": 0.5})
    tap_at(app)
    started = time.perf_counter()
    assert deliver(app) == 0
    assert time.perf_counter() - started < 2.0
    [row] = rows(app)
    assert row.status == "pending" and row.attempts == 1
    assert "timeout" in (row.last_error or "")
    assert black_hole.held  # it really connected, then waited
    assert row.next_attempt_at > row.created_at


def test_a_dead_mail_server_costs_one_timeout_per_round_not_one_per_message(
    make_app: Any, district: Any, black_hole: BlackHole
) -> None:
    app = make_app(**{**smtp_settings(port=black_hole.port), "SMTP_TIMEOUT": 0.5})
    schools = ["Lincoln Elementary School", "Riverside Middle School"]
    for i in range(12):
        tap_start(enroll_client(app, schools[i % 2])[0])
    factory = database(app).session_factory
    started = time.perf_counter()
    sent = deliver_due(
        factory, senders_from_settings(app.config), hooks=hooks_for(app), limit=20, parallel=4
    )
    elapsed = time.perf_counter() - started
    assert sent == 0
    # Twelve tries one after another would take 6 s; four at once, then the rest left
    # untried for this round, take about one timeout.
    assert elapsed < 2.5, f"the round took {elapsed:.2f} s"
    assert len(black_hole.held) <= 4
    waiting = rows(app)
    assert {r.status for r in waiting} == {"pending"}
    untried = [r for r in waiting if "not tried" in (r.last_error or "")]
    assert len(untried) >= 8
    # Held back is not a try: the count stays, and they are due again within a second or so.
    assert all(r.attempts == 0 for r in untried)
    assert all((r.next_attempt_at - r.created_at).total_seconds() < 10 for r in untried)


@pytest.mark.slow
def test_smtp_down_during_fifty_encounters_then_each_alert_delivered_once(
    make_app: Any, district: Any
) -> None:
    port = free_port()  # nothing listens here yet: connection refused
    app = make_app(**smtp_settings(port=port))
    schools = ["Lincoln Elementary School", "Riverside Middle School"]
    clients = [enroll_client(app, schools[i % 2])[0] for i in range(50)]
    taps = []
    for client in clients:
        started = time.perf_counter()
        assert tap_start(client).status_code == 302
        taps.append(time.perf_counter() - started)
    print(f"\n50 taps with SMTP down: max {max(taps) * 1000:.0f} ms")
    assert max(taps) < 0.75, f"slowest tap took {max(taps):.3f} s"

    factory = database(app).session_factory
    hooks = hooks_for(app)
    assert deliver_due(factory, senders_from_settings(app.config), hooks=hooks, limit=100) == 0
    waiting = rows(app)
    assert len(waiting) == 50 and {r.status for r in waiting} == {"pending"}
    assert all("ConnectionRefusedError" in (r.last_error or "") for r in waiting)

    sink = SmtpSink("127.0.0.1", port)
    controller = start_smtp(sink)  # the server comes back on the configured address
    try:
        later = max(r.next_attempt_at for r in waiting) + timedelta(seconds=1)
        delivered = 0
        for _ in range(10):
            sent = deliver_due(
                factory, senders_from_settings(app.config), later, hooks=hooks, limit=100
            )
            delivered += sent
            if sent == 0:
                break
        assert (
            deliver_due(factory, senders_from_settings(app.config), later, hooks=hooks, limit=100)
            == 0
        )
    finally:
        controller.stop()
    assert delivered == 50
    keys = {f"<{r.idempotency_key}@district.test>" for r in rows(app)}
    ids = sink.message_ids()
    assert len(ids) == 50 and set(ids) == keys  # every alert, each exactly once
    assert {r.status for r in rows(app)} == {"sent"}


# --- a worker killed between sending and marking sent ---------------------------------


@pytest.mark.slow  # starts a Python subprocess
def test_worker_killed_after_send_redelivers_with_the_same_message_id(
    make_app: Any, database_url: str, tmp_path: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    tap_at(app, "Lincoln Elementary School")
    tap_at(app, "Riverside Middle School")
    first, second = rows(app)
    at = now_utc()
    worker_settings = settings(database_url, str(tmp_path), **smtp_settings(smtp_server))
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "notify" / "killed_worker.py"),
            json.dumps(worker_settings),
            at.isoformat(),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "KIOSK_INSTANCE_PATH": str(tmp_path / "w")},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    # The server accepted the first message; the worker died before it could say so.
    assert smtp_server.message_ids() == [f"<{first.idempotency_key}@district.test>"]
    first, second = rows(app)
    assert (first.status, second.status) == ("sending", "sending")  # both were leased
    assert first.lease_until is not None and first.sent_at is None

    # Before the lease runs out nobody touches the rows; after it, they are delivered.
    assert deliver(app, now=at + timedelta(seconds=30)) == 0
    assert deliver(app, now=first.lease_until + timedelta(seconds=1)) == 2
    assert deliver(app, now=first.lease_until + timedelta(seconds=2)) == 0
    first, second = rows(app)
    assert (first.status, second.status) == ("sent", "sent")
    assert (first.attempts, second.attempts) == (2, 2)
    # At least once: the first alert arrived twice, with one Message-ID receivers can dedupe.
    ids = smtp_server.message_ids()
    assert ids.count(f"<{first.idempotency_key}@district.test>") == 2
    assert ids.count(f"<{second.idempotency_key}@district.test>") == 1
    assert len(ids) == 3


# --- /healthz --------------------------------------------------------------------------


@pytest.fixture
def restore_clock() -> Iterator[None]:
    yield
    clock.set_offset(0)


def health(app: Flask) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get("/healthz")
    return response.status_code, response.get_json()


def test_healthz_without_pending_alerts_is_ok(app: Flask, district: Any) -> None:
    status, body = health(app)
    assert status == 200
    assert {k: v for k, v in body.items() if k != "channels"} == {
        "status": "ok",
        "database": "ok",
        "outbox_pending": 0,
        "delivery_heartbeat_age_s": None,
        "oldest_pending_age_s": None,
        "no_deliverer": False,
        "escalation_failures": 0,
        "contact_problems": [],
    }
    idle = {"waiting": 0, "waiting_alerts": 0, "oldest_alert_age_s": None, "stalled": False}
    # Demo mode: email goes to the mail log; webhooks go to each contact's own server.
    assert body["channels"] == {
        "email": {**idle, "sender": True, "problem_contacts": []},
        "webhook": {**idle, "sender": True, "problem_contacts": []},
    }


def test_healthz_reports_ages_and_stalls_when_delivery_stops(
    make_app: Any, district: Any, restore_clock: None
) -> None:
    app = make_app(DELIVERY_STALL_SECONDS=60)
    factory = database(app).session_factory
    record_heartbeat(factory, "worker-a", now_utc())
    tap_at(app)
    status, body = health(app)
    assert status == 200 and body["status"] == "ok" and body["outbox_pending"] == 1
    assert 0 <= body["delivery_heartbeat_age_s"] < 5
    assert 0 <= body["oldest_pending_age_s"] < 5

    clock.set_offset(90)  # a minute and a half later, nobody has delivered anything
    status, body = health(app)
    assert status == 503 and body["status"] == "stalled" and body["database"] == "ok"
    assert body["delivery_heartbeat_age_s"] >= 89 and body["oldest_pending_age_s"] >= 89

    # A worker that is alive but cannot deliver (the alert is still too old): still stalled.
    record_heartbeat(factory, "worker-a", now_utc())
    status, body = health(app)
    assert status == 503 and body["delivery_heartbeat_age_s"] < 5
    with database(app).session_factory() as session:
        assert session.scalars(select(WorkerHeartbeat)).one().owner == "worker-a"

    # Once the alert is delivered (demo mail log), delivery is healthy again.
    assert deliver(app, now=now_utc()) == 1
    status, body = health(app)
    assert status == 200 and body["oldest_pending_age_s"] is None


def test_healthz_with_delivery_off_and_no_worker_stalls(
    make_app: Any, district: Any, restore_clock: None
) -> None:
    app = make_app(DELIVERY="off", DELIVERY_STALL_SECONDS=60)
    tap_at(app)
    clock.set_offset(61)
    status, body = health(app)
    assert status == 503 and body["status"] == "stalled"
    assert body["delivery_heartbeat_age_s"] is None and body["oldest_pending_age_s"] > 60


def test_healthz_counts_only_alerts_as_stalling(
    make_app: Any, district: Any, restore_clock: None
) -> None:
    from kiosk.db import writing
    from kiosk.notify.outbox import enqueue

    app = make_app(DELIVERY_STALL_SECONDS=60)
    with writing(), database(app).session_factory() as session, session.begin():
        enqueue(
            session,
            key="standalone.0.email.followup.0.0",
            encounter_id=None,
            contact_id=None,
            channel="email",
            kind="followup",
            level=0,
            sequence=0,
            recipient="someone@demo-district.example",
            subject="s",
            body="b",
            payload={},
            now=now_utc(),
        )
    clock.set_offset(600)
    status, body = health(app)
    assert status == 200 and body["outbox_pending"] == 1 and body["oldest_pending_age_s"] is None


def test_running_deliverer_beats_and_keeps_healthz_ok(make_app: Any, district: Any) -> None:
    app = make_app()
    tap_at(app)
    deliverer = Deliverer(
        database(app).session_factory,
        senders_from_settings(app.config),
        policy=Policy(),
        poll_seconds=0.1,
        hooks=hooks_for(app),
    )
    deliverer.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (
            deliverer.heartbeat is None or health(app)[1]["outbox_pending"]
        ):
            time.sleep(0.05)
    finally:
        deliverer.stop()
    status, body = health(app)
    assert status == 200 and body["outbox_pending"] == 0
    assert body["delivery_heartbeat_age_s"] is not None and body["delivery_heartbeat_age_s"] < 5
    with database(app).session_factory() as session:
        beat = session.get(WorkerHeartbeat, deliverer.owner)
        assert beat is not None and beat.beat_at == deliverer.heartbeat


@pytest.mark.slow
def test_running_deliverer_recovers_all_waiting_alerts_soon_after_the_server_returns(
    make_app: Any, district: Any
) -> None:
    """When the mail server comes back, the first message through makes every waiting one
    due at once, instead of each waiting out its own backoff."""
    port = free_port()
    app = make_app(**smtp_settings(port=port))
    deliverer = Deliverer(
        database(app).session_factory,
        senders_from_settings(app.config),
        policy=Policy(backoff_cap=30.0),
        poll_seconds=0.2,
        hooks=hooks_for(app),
    )
    deliverer.start()
    sink = SmtpSink("127.0.0.1", port)
    controller = None
    try:
        schools = ["Lincoln Elementary School", "Riverside Middle School"]
        for i in range(6):
            tap_start(enroll_client(app, schools[i % 2])[0])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and max(r.attempts for r in rows(app)) < 4:
            time.sleep(0.2)  # let the backoff grow past a few seconds
        assert all(r.status != "sent" for r in rows(app))
        controller = start_smtp(sink)
        back = time.monotonic()
        while time.monotonic() < back + 15 and len(sink.message_ids()) < 6:
            time.sleep(0.1)
        recovered_in = time.monotonic() - back
    finally:
        deliverer.stop()
        if controller is not None:
            controller.stop()
    assert len(set(sink.message_ids())) == 6 == len(sink.message_ids())
    assert recovered_in < 5.0, f"took {recovered_in:.1f} s after the server came back"
