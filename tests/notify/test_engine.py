"""The one delivery engine: leases that run out mid-send, rows that cannot be marked, a poison
encounter in escalation, the short lease of a handed-over alert, claims bounded by free
senders, a stopping deliverer, and a level with no contacts. Real SMTP on loopback, real
threads released together by barriers, a real process killed right after a tap."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
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
from sqlalchemy import func, select

from kiosk import clock
from kiosk.auth.devices import enroll, issue_enrollment
from kiosk.clock import now_utc
from kiosk.db import writing
from kiosk.delivery import hooks_for
from kiosk.models import Contact, Encounter, EncounterEvent, OutboxMessage, School
from kiosk.notify import outbox as outbox_module
from kiosk.notify.channels import Outgoing, Sender, senders_from_settings
from kiosk.notify.deliverer import Deliverer
from kiosk.notify.links import Links
from kiosk.notify.outbox import HANDOFF_LEASE_SECONDS
from kiosk.notify.sending import LEASE_SECONDS
from kiosk.notify.worker import Engine
from kiosk.protocol.escalation import (
    RETRY_FAILED_SECONDS,
    escalate_due,
    escalation_failures,
    escalation_failures_total,
    failing_escalations,
)
from kiosk.webdb import database
from tests.conftest import (
    SmtpSink,
    deliver,
    settings,
    smtp_settings,
    tap_at,
)
from tests.conftest import (
    outbox_rows as rows,
)
from tests.test_office import login

ROOT = Path(__file__).resolve().parents[2]
LINCOLN = "Lincoln Elementary School"
RIVERSIDE = "Riverside Middle School"
WAIT = 10.0  # the most any step waits for another thread; never a pause that orders them


def message_id(row: OutboxMessage) -> str:
    return f"<{row.idempotency_key}@district.test>"


@contextlib.contextmanager
def refused(app: Flask, timing: str, table: str, condition: str) -> Iterator[None]:
    """A database trigger that refuses some writes to a table (BEFORE INSERT or UPDATE,
    WHEN condition), as a broken constraint would; dropped again when the block ends."""
    engine = database(app).engine
    name = "kiosk_test_refuse"
    if engine.dialect.name == "postgresql":
        create = [
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by a test trigger'; END $$",
            f"CREATE TRIGGER {name} BEFORE {timing} ON {table} FOR EACH ROW "
            f"WHEN ({condition}) EXECUTE FUNCTION {name}()",
        ]
        drop = [f"DROP TRIGGER IF EXISTS {name} ON {table}", f"DROP FUNCTION IF EXISTS {name}()"]
    else:
        create = [
            f"CREATE TRIGGER {name} BEFORE {timing} ON {table} FOR EACH ROW "
            f"WHEN {condition} BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
        ]
        drop = [f"DROP TRIGGER IF EXISTS {name}"]
    with writing(), engine.begin() as connection:
        for statement in create:
            connection.exec_driver_sql(statement)
    try:
        yield
    finally:
        with writing(), engine.begin() as connection:
            for statement in drop:
                connection.exec_driver_sql(statement)


def no_addresses_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Operational logs carry ids and kinds, never a recipient."""
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "@demo-district.example" not in text and "@district.test" not in text


class TogetherSender:
    """A real sender whose send waits at a barrier first, so that two deliverers' sends
    start together; `then` holds the send's result back until the test lets it go."""

    def __init__(
        self,
        inner: Sender,
        barrier: threading.Barrier,
        arrived: threading.Event,
        then: threading.Event | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.barrier = barrier
        self.arrived = arrived
        self.then = then

    def send(self, message: Outgoing) -> None:
        self.arrived.set()
        self.barrier.wait(WAIT)
        self.inner.send(message)
        if self.then is not None:
            assert self.then.wait(WAIT)


# --- two deliverers, a lease that runs out mid-send -------------------------------------


def test_a_deliverer_whose_lease_ran_out_mid_send_changes_nothing(
    make_app: Any, district: Any, smtp_server: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    tap_at(app)
    [row] = rows(app)
    factory = database(app).session_factory
    smtp = senders_from_settings(app.config)["email"]
    together = threading.Barrier(2)
    a_sending, b_sending, b_done = threading.Event(), threading.Event(), threading.Event()
    sender_a = TogetherSender(smtp, together, a_sending, then=b_done)
    hooks = hooks_for(app)
    a = Engine(factory, {"email": sender_a}, hooks=hooks, owner="a")
    b = Engine(
        factory, {"email": TogetherSender(smtp, together, b_sending)}, hooks=hooks, owner="b"
    )
    t0 = row.created_at
    # A's lease runs out while it sends: a minute later B finds the row due again.
    b_at = t0 + timedelta(seconds=LEASE_SECONDS + 1)
    accepted: dict[str, int] = {}

    def run(name: str, engine: Engine, at: Any) -> None:
        accepted[name] = engine.round(at, parallel=1)

    thread_a = threading.Thread(target=run, args=("a", a, t0))
    thread_b = threading.Thread(target=run, args=("b", b, b_at))
    with caplog.at_level(logging.WARNING, logger="kiosk.notify"):
        thread_a.start()
        assert a_sending.wait(WAIT)  # A claimed the row and is about to send it
        thread_b.start()  # B claims it too; both sends are released together
        thread_b.join(WAIT)
        assert not thread_b.is_alive() and accepted["b"] == 1
        b_done.set()  # only now does A's result arrive
        thread_a.join(WAIT)
        assert not thread_a.is_alive()

    assert accepted == {"a": 0, "b": 1}
    [row] = rows(app)
    assert (row.status, row.lease_owner, row.sent_at, row.attempts) == ("sent", "b", b_at, 2)
    assert row.lease_until is None and row.last_error is None
    # Sent at most twice, both times with the one Message-ID receivers use to drop the copy.
    assert smtp_server.message_ids() == [message_id(row)] * 2
    assert the_encounter_first_alert_sent_at(app) == b_at
    lost = [r for r in caplog.records if "lease lost" in r.getMessage()]
    assert [r.getMessage().split(":")[0] for r in lost] == [f"outbox {row.id} (alert)"]
    no_addresses_logged(caplog)


def the_encounter_first_alert_sent_at(app: Flask) -> Any:
    with database(app).session_factory() as session:
        return session.scalars(select(Encounter.first_alert_sent_at)).one()


def test_a_handed_over_row_whose_lease_was_taken_is_not_sent(
    make_app: Any, district: Any, smtp_server: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """The lease is checked when the send starts: a deliverer that got to a handed-over row
    only after its short lease ran out, and another deliverer took it, does not send it."""
    app = make_app(**smtp_settings(smtp_server))
    handoff = outbox_module.LocalHandoff("a")
    outbox_module.register_local(handoff)
    try:
        tap_at(app)
    finally:
        outbox_module.unregister_local(handoff)
    [row] = rows(app)
    assert row.lease_until is not None
    late = row.lease_until + timedelta(seconds=1)
    a = Engine(
        database(app).session_factory,
        senders_from_settings(app.config),
        hooks=hooks_for(app),
        owner="a",
        clock=lambda: late,
    )
    [message] = a.handed(handoff.drain())  # still leased to A when it looks
    assert deliver(app, now=late) == 1  # but another deliverer takes it over first
    with caplog.at_level(logging.WARNING, logger="kiosk.notify"):
        assert a.send(message) is None
    [row] = rows(app)
    assert row.status == "sent" and row.lease_owner != "a"
    assert smtp_server.message_ids() == [message_id(row)]
    assert any(f"outbox {row.id} (alert): lease lost" in r.getMessage() for r in caplog.records)


# --- one row that cannot be marked -----------------------------------------------------


@pytest.mark.parametrize("pipeline", [False, True], ids=["deliver_due", "deliverer"])
def test_a_row_that_cannot_be_marked_leaves_the_others_marked(
    make_app: Any,
    district: Any,
    smtp_server: SmtpSink,
    caplog: pytest.LogCaptureFixture,
    pipeline: bool,
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    for school in (LINCOLN, RIVERSIDE, LINCOLN):
        tap_at(app, school)
    first, bad, last = rows(app)
    factory = database(app).session_factory
    with (
        refused(app, "UPDATE", "outbox_messages", f"NEW.id = {bad.id} AND NEW.status = 'sent'"),
        caplog.at_level(logging.WARNING, logger="kiosk.notify"),
    ):
        if pipeline:
            # The production pipeline: all three go out at once and are marked together.
            deliverer = Deliverer(
                factory, senders_from_settings(app.config), poll_seconds=0.05, hooks=hooks_for(app)
            )
            deliverer.start()
            try:
                deadline = time.monotonic() + WAIT
                while [r.status for r in rows(app)].count("sent") < 2:
                    assert time.monotonic() < deadline, [r.status for r in rows(app)]
                    smtp_server.received.wait(0.05)
            finally:
                deliverer.stop()
        else:
            assert deliver(app, parallel=3) == 2
    first, bad, last = rows(app)
    assert (first.status, bad.status, last.status) == ("sent", "sending", "sent")
    assert bad.sent_at is None and bad.lease_until is not None
    assert sorted(smtp_server.message_ids()) == sorted(map(message_id, (first, bad, last)))
    unmarked = [r.getMessage() for r in caplog.records if "could not record the" in r.getMessage()]
    assert unmarked and all(m.startswith(f"outbox {bad.id} (alert)") for m in unmarked)
    no_addresses_logged(caplog)

    # Its lease runs out and it is sent again, with the same Message-ID.
    assert deliver(app, now=bad.lease_until + timedelta(seconds=1)) == 1
    first, bad, last = rows(app)
    assert bad.status == "sent"
    assert smtp_server.message_ids().count(message_id(bad)) == 2
    assert len(smtp_server.message_ids()) == 4


# --- a poison encounter in escalation -------------------------------------------------


def encounters(app: Flask) -> list[Encounter]:
    with database(app).session_factory() as session:
        return list(session.scalars(select(Encounter).order_by(Encounter.id)))


def test_a_poison_encounter_is_logged_and_counted_and_the_others_escalate(
    make_app: Any, district: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    for school in (LINCOLN, RIVERSIDE, LINCOLN):
        tap_at(app, school)
    poison, other, third = encounters(app)
    # The poison is due first: its failure must not stop the ones after it.
    assert poison.next_escalation_at <= other.next_escalation_at <= third.next_escalation_at
    at = third.next_escalation_at
    factory = database(app).session_factory
    links = Links.from_settings(app.config)
    # The database refuses every event of the poison encounter, so its escalation fails.
    with (
        refused(app, "INSERT", "encounter_events", f"NEW.encounter_id = {poison.id}"),
        caplog.at_level(logging.ERROR, logger="kiosk.protocol.escalation"),
    ):
        assert escalate_due(factory, links, at) == 2
        assert escalate_due(factory, links, at) == 0  # tried again only after a pause
    poison, other, third = encounters(app)
    assert (poison.escalation_level, other.escalation_level, third.escalation_level) == (1, 2, 2)
    escalated = {(r.encounter_id, r.level) for r in rows(app) if r.kind == "escalation"}
    assert escalated == {(other.id, 2), (third.id, 2)}
    assert escalation_failures() == 1 and escalation_failures_total() == 1
    [failure] = failing_escalations()
    assert (failure.encounter_id, failure.public_id) == (poison.id, poison.public_id)
    assert failure.at == at
    [logged] = [r.getMessage() for r in caplog.records if r.name == "kiosk.protocol.escalation"]
    assert logged.startswith(f"escalation of encounter {poison.id} failed (")
    no_addresses_logged(caplog)

    # /healthz counts it; the outbox page shows it to the school's designee only.
    assert app.test_client().get("/healthz").get_json()["escalation_failures"] == 1
    lincoln = login(app, "dana.reyes@demo-district.example").get("/office/outbox")
    assert f"Record {poison.public_id}" in lincoln.get_data(as_text=True)
    riverside = login(app, "jordan.kim@demo-district.example").get("/office/outbox")
    assert "escalation-failures" not in riverside.get_data(as_text=True)

    # Once the fault is gone, the next try escalates it and nothing is failing any more.
    later = at + timedelta(seconds=RETRY_FAILED_SECONDS)
    assert escalate_due(factory, links, later) == 1
    assert encounters(app)[0].escalation_level == 2
    assert escalation_failures() == 0 and escalation_failures_total() == 1
    assert app.test_client().get("/healthz").get_json()["escalation_failures"] == 0


# --- the short lease of a handed-over alert -------------------------------------------


@pytest.fixture
def restore_clock() -> Iterator[None]:
    yield
    clock.set_offset(0)


def device_secret(app: Flask, school_name: str) -> str:
    with writing(), database(app).session_factory() as session, session.begin():
        school = session.scalars(select(School).where(School.name == school_name)).one()
        _, token = issue_enrollment(session, school, now_utc(), 1)
        enrolled = enroll(session, token, now_utc())
        assert enrolled is not None
        return enrolled[1]


@pytest.mark.slow  # starts a Python subprocess
def test_an_alert_handed_to_a_worker_killed_after_the_tap_goes_out_seconds_later(
    make_app: Any,
    database_url: str,
    tmp_path: Any,
    district: Any,
    smtp_server: SmtpSink,
    restore_clock: None,
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    worker_settings = settings(database_url, str(tmp_path), **smtp_settings(smtp_server))
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "notify" / "tapped_worker.py"),
            json.dumps(worker_settings),
            device_secret(app, LINCOLN),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "KIOSK_INSTANCE_PATH": str(tmp_path / "w")},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    # The tap committed, leased to the dead worker's deliverer, which never sent it.
    [row] = rows(app)
    assert (row.status, row.attempts, row.sent_at) == ("sending", 1, None)
    assert row.lease_owner and row.lease_until is not None
    assert (
        row.lease_until - row.created_at
        <= timedelta(seconds=HANDOFF_LEASE_SECONDS)
        <= (timedelta(seconds=10))
    )
    assert smtp_server.message_ids() == []
    assert deliver(app, now=row.lease_until - timedelta(seconds=1)) == 0  # still leased

    # Another server's deliverer, eleven seconds on (not sixty), sends it.
    clock.set_offset((row.lease_until - now_utc()).total_seconds() + 1)
    assert now_utc() < row.created_at + timedelta(seconds=LEASE_SECONDS)
    deliverer = Deliverer(
        database(app).session_factory,
        senders_from_settings(app.config),
        poll_seconds=0.05,
        hooks=hooks_for(app),
    )
    deliverer.start()
    try:
        assert smtp_server.received.wait(WAIT)
        deadline = time.monotonic() + WAIT
        while rows(app)[0].status != "sent":
            assert time.monotonic() < deadline
            smtp_server.received.wait(0.05)
    finally:
        deliverer.stop()
    [row] = rows(app)
    assert (row.status, row.attempts, row.lease_owner) == ("sent", 2, deliverer.owner)
    assert smtp_server.message_ids() == [message_id(row)]


# --- claims bounded by free senders, and a stopping deliverer -------------------------


class HeldSender:
    """A real sender whose sends wait until the test lets them go; until then each also
    meets the test thread at `arrive` (if given), which proves they run at the same time."""

    def __init__(
        self, inner: Sender, go: threading.Event, arrive: threading.Barrier | None = None
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.go = go
        self.arrive = arrive
        self.arrived = threading.Event()

    def send(self, message: Outgoing) -> None:
        self.arrived.set()
        if self.arrive is not None and not self.go.is_set():
            self.arrive.wait(WAIT)
        assert self.go.wait(WAIT)
        self.inner.send(message)


def leased_to(app: Flask, owner: str) -> int:
    with database(app).session_factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.lease_owner == owner, OutboxMessage.status == "sending")
            )
            or 0
        )


def wait_for_rounds(deliverer: Deliverer, more: int) -> None:
    target = deliverer.rounds + more
    deadline = time.monotonic() + WAIT
    while deliverer.rounds < target:
        assert time.monotonic() < deadline and deliverer.is_alive()
        deliverer.stopping.wait(0.01)


def test_a_deliverer_claims_only_as_many_rows_as_it_has_free_senders(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    for i in range(5):
        tap_at(app, (LINCOLN, RIVERSIDE)[i % 2])
    assert {r.status for r in rows(app)} == {"pending"}
    free = 2
    both_sending, go = threading.Barrier(free + 1), threading.Event()
    held = HeldSender(senders_from_settings(app.config)["email"], go, arrive=both_sending)
    deliverer = Deliverer(
        database(app).session_factory,
        {"email": held},
        poll_seconds=0.02,
        hooks=hooks_for(app),
        parallel=free,
    )
    deliverer.start()
    try:
        both_sending.wait(WAIT)  # two sends have started and wait
        wait_for_rounds(deliverer, 3)  # several rounds with no free sender
        assert leased_to(app, deliverer.owner) == free
        assert sorted(r.status for r in rows(app)) == ["pending"] * 3 + ["sending"] * 2
        assert deliverer.free_senders() == 0
        go.set()
        deadline = time.monotonic() + WAIT
        while [r.status for r in rows(app)].count("sent") < 5:
            assert time.monotonic() < deadline
            smtp_server.received.wait(0.05)
    finally:
        deliverer.stop()
    assert sorted(smtp_server.message_ids()) == sorted(map(message_id, rows(app)))
    assert Engine(database(app).session_factory, {}, hooks=hooks_for(app)).claim(now_utc(), 0) == []


def test_a_stopping_deliverer_sends_what_it_started_and_gives_back_the_rest(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    go = threading.Event()
    held = HeldSender(senders_from_settings(app.config)["email"], go)
    deliverer = Deliverer(
        database(app).session_factory,
        {"email": held},
        poll_seconds=0.02,
        hooks=hooks_for(app),
        parallel=1,
    )
    deliverer.start()
    stopper = threading.Thread(target=deliverer.stop, kwargs={"timeout": WAIT})
    try:
        wait_for_rounds(deliverer, 1)  # handed over from now on
        tap_at(app, LINCOLN)
        assert held.arrived.wait(WAIT)  # its send has started
        # The handover's short lease is extended for the send, alongside it.
        deadline = time.monotonic() + WAIT
        while (first := rows(app)[0]).lease_until - first.created_at <= timedelta(
            seconds=HANDOFF_LEASE_SECONDS
        ):
            assert time.monotonic() < deadline, first.lease_until
            go.wait(0.01)
        assert first.lease_owner == deliverer.owner
        tap_at(app, RIVERSIDE)  # handed over too; the one sender is busy
        stopper.start()
        assert deliverer.stopping.wait(WAIT)
        go.set()  # the send under way finishes
        stopper.join(WAIT)
        assert not deliverer.is_alive()
    finally:
        go.set()
        if not stopper.is_alive():
            deliverer.stop()
    first, second = rows(app)
    assert (first.status, first.lease_owner) == ("sent", deliverer.owner)
    # Given back, untried: due now for any deliverer.
    assert (second.status, second.lease_owner, second.attempts) == ("pending", None, 0)
    assert second.lease_until is not None and second.lease_until <= now_utc()
    assert smtp_server.message_ids() == [message_id(first)]
    assert deliver(app) == 1
    assert smtp_server.message_ids() == [message_id(first), message_id(second)]


# --- a level with no contacts ---------------------------------------------------------


def test_escalating_through_a_level_with_no_contacts_records_it(
    make_app: Any, district: Any
) -> None:
    app = make_app()
    with writing(), database(app).session_factory() as session, session.begin():
        lincoln = session.scalars(select(School).where(School.name == LINCOLN)).one()
        for contact in session.scalars(
            select(Contact).where(Contact.school_id == lincoln.id, Contact.level == 2)
        ):
            contact.active = False
    tap_at(app, LINCOLN)
    [encounter] = encounters(app)
    links = Links.from_settings(app.config)
    at = encounter.next_escalation_at
    assert escalate_due(database(app).session_factory, links, at) == 1
    with database(app).session_factory() as session:
        events = session.scalars(
            select(EncounterEvent)
            .where(EncounterEvent.encounter_id == encounter.id)
            .order_by(EncounterEvent.seq)
        ).all()
        steps = [(e.kind, json.loads(e.data)) for e in events if e.kind != "started"]
    empty = [data for kind, data in steps if kind == "escalation_level_empty"]
    assert empty == [{"level": 2}, {"level": 3}]
    # Nobody above level 1: the level-1 contact is reminded at once.
    assert steps[-1][0] == "realerted"
    assert [(r.kind, r.level) for r in rows(app)] == [("alert", 1), ("realert", 3)]
