"""Deliver due outbox rows: claim with a lease, send outside any transaction, mark each row."""

from __future__ import annotations

import logging
import os
import queue
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from kiosk.clock import now_utc
from kiosk.db import after_commit, writing
from kiosk.models import Contact, Encounter, OutboxMessage, WorkerHeartbeat
from kiosk.notify import outbox
from kiosk.notify.alerts import ALERT_KINDS
from kiosk.notify.channels import DeliveryError, Outgoing, Sender
from kiosk.notify.escalation import LAST_LEVEL, escalate_due
from kiosk.notify.links import Links
from kiosk.notify.outbox import wake, wake_event
from kiosk.protocol.state import Status

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
BATCH = 20
# Messages sent at the same time by one deliverer (each on its own connection).
PARALLEL = 8
# After a server did not answer, one message probes it again after this long.
OUTAGE_PROBE_SECONDS = 1.0
# A message held back by an outage in a one-off round is due again this soon.
UNTRIED_RETRY_SECONDS = 1.0
# Heartbeats of workers gone this long are deleted, so the table stays small.
HEARTBEAT_KEEP = timedelta(days=1)
# A deliverer records that it is alive at most this often (/healthz allows a minute).
HEARTBEAT_SECONDS = 5.0
# Rows the outbox page may send again at once.
RETRYABLE = ("failed", "pending", "dead")


@dataclass(frozen=True)
class Policy:
    """How hard to try: capped exponential backoff with jitter, then give up."""

    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    give_up_after: float = 600.0
    lease_seconds: float = LEASE_SECONDS

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Return seconds before the next try; jitter keeps many rows from retrying in step."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** max(attempts - 1, 0)))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_cap))
        return delay


def policy_from_settings(settings: Mapping[str, object]) -> Policy:
    return Policy(
        backoff_cap=float(settings["DELIVERY_BACKOFF_CAP_SECONDS"]),  # type: ignore[arg-type]
        give_up_after=float(settings["DELIVERY_GIVE_UP_SECONDS"]),  # type: ignore[arg-type]
    )


def default_owner() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _due(now: datetime) -> Any:
    return or_(
        and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
    )


def anything_due(session_factory: sessionmaker[Session], now: datetime) -> bool:
    """A plain read, so a quiet round never queues for the write lock."""
    with session_factory() as session:
        return session.scalar(select(OutboxMessage.id).where(_due(now)).limit(1)) is not None


def _outgoing(row: OutboxMessage, secrets: Mapping[int, str]) -> Outgoing:
    return Outgoing(
        id=row.id,
        key=row.idempotency_key,
        channel=row.channel,
        kind=row.kind,
        recipient=row.recipient,
        subject=row.subject,
        body=row.body,
        payload=row.payload,
        attempts=row.attempts,
        contact_id=row.contact_id,
        secret=secrets.get(row.contact_id or 0, ""),
    )


def claim(
    session_factory: sessionmaker[Session], now: datetime, owner: str, policy: Policy, limit: int
) -> list[Outgoing]:
    """Lease due rows in one short transaction, so other workers skip them."""
    if not anything_due(session_factory, now):
        return []
    with writing(), session_factory() as session, session.begin():
        rows = session.scalars(
            select(OutboxMessage)
            .where(_due(now))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        secrets = _webhook_secrets(session, rows)
        claimed = []
        for row in rows:
            row.status = "sending"
            row.lease_owner = owner
            row.lease_until = now + timedelta(seconds=policy.lease_seconds)
            row.attempts += 1
            claimed.append(_outgoing(row, secrets))
        return claimed


def load_leased(
    session_factory: sessionmaker[Session], ids: Sequence[int], owner: str
) -> list[Outgoing]:
    """Read rows this deliverer leased when they were enqueued (no write lock needed)."""
    with session_factory() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                OutboxMessage.lease_owner == owner,
                OutboxMessage.status == "sending",
            )
            .order_by(OutboxMessage.id)
        ).all()
        secrets = _webhook_secrets(session, rows)
        return [_outgoing(row, secrets) for row in rows]


def _webhook_secrets(session: Session, rows: Sequence[OutboxMessage]) -> dict[int, str]:
    """Read signing secrets at claim time: the outbox row never stores one."""
    ids = {row.contact_id for row in rows if row.channel == "webhook" and row.contact_id}
    if not ids:
        return {}
    found = session.execute(
        select(Contact.id, Contact.webhook_secret).where(Contact.id.in_(ids))
    ).all()
    return {contact_id: secret or "" for contact_id, secret in found}


@dataclass(frozen=True)
class Result:
    """How one try ended: accepted by its channel (via), or not (error)."""

    message: Outgoing
    at: datetime
    via: str | None = None
    error: DeliveryError | None = None


def record_results(
    session_factory: sessionmaker[Session], results: Sequence[Result], owner: str, policy: Policy
) -> int:
    """Mark a round's rows in one short transaction; return how many were accepted."""
    if not results:
        return 0
    accepted = 0
    with writing(), session_factory() as session, session.begin():
        rows = {
            row.id: row
            for row in session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.id.in_([result.message.id for result in results])
                )
            )
        }
        for result in results:
            row = rows.get(result.message.id)
            if row is None or row.lease_owner != owner or row.status != "sending":
                continue  # the lease ran out and another worker took the row over
            if result.error is None:
                _mark_sent(session, row, result.via or "", result.at)
                accepted += 1
            else:
                _mark_failed(session, row, result.error, result.at, policy)
    return accepted


def _mark_sent(session: Session, row: OutboxMessage, via: str, at: datetime) -> None:
    row.status = "sent"
    row.sent_at = at
    row.delivered_via = via
    row.lease_until = None
    row.last_error = None
    if row.kind == "alert" and row.encounter_id is not None:
        session.execute(
            update(Encounter)
            .where(Encounter.id == row.encounter_id, Encounter.first_alert_sent_at.is_(None))
            .values(first_alert_sent_at=at)
            .execution_options(synchronize_session=False)
        )


def _mark_failed(
    session: Session, row: OutboxMessage, error: DeliveryError, at: datetime, policy: Policy
) -> None:
    """Schedule a retry, or give up when the error is permanent or the row is too old."""
    row.last_error = str(error)[:500]
    row.lease_until = None
    if error.untried:
        row.attempts = max(row.attempts - 1, 0)  # held back, not tried: it does not count
    too_old = (at - row.created_at).total_seconds() >= policy.give_up_after
    if not error.retry or too_old:
        row.status = "failed"
        row.failed_at = at
        if row.kind in ALERT_KINDS and row.encounter_id is not None:
            _escalate_now(session, row.encounter_id, at)
    else:
        row.status = "pending"
        wait = (
            error.retry_after
            if error.untried and error.retry_after is not None
            else policy.delay(row.attempts, error.retry_after)
        )
        row.next_attempt_at = at + timedelta(seconds=wait)


def _escalate_now(session: Session, encounter_id: int, now: datetime) -> None:
    """An alert nobody will receive: the next escalation round escalates at once.

    Only while a higher level remains: past the last level, reminders keep their own
    schedule, so a contact that always fails cannot set off a reminder every round.
    """
    pulled = session.execute(
        update(Encounter)
        .where(
            Encounter.id == encounter_id,
            Encounter.status == Status.OPEN,
            Encounter.first_acknowledged_at.is_(None),
            Encounter.escalation_level < LAST_LEVEL,
            or_(Encounter.next_escalation_at.is_(None), Encounter.next_escalation_at > now),
        )
        .values(next_escalation_at=now)
        .execution_options(synchronize_session=False)
    )
    if pulled.rowcount:  # type: ignore[attr-defined]
        # Wake the deliverer, whose next round runs escalate_due() first.
        after_commit(session, wake)


def record_heartbeat(session_factory: sessionmaker[Session], owner: str, at: datetime) -> None:
    """Upsert this worker's heartbeat (read by /healthz) and forget long-gone workers."""
    with writing(), session_factory() as session, session.begin():
        beat = session.get(WorkerHeartbeat, owner)
        if beat is None:
            session.add(WorkerHeartbeat(owner=owner, beat_at=at))
        else:
            beat.beat_at = at
        session.execute(
            delete(WorkerHeartbeat)
            .where(WorkerHeartbeat.beat_at < at - HEARTBEAT_KEEP)
            .execution_options(synchronize_session=False)
        )


def retry_now(session: Session, message: OutboxMessage, now: datetime) -> bool:
    """Make a failed or waiting row due at once (the outbox page's "Retry now")."""
    if message.status not in RETRYABLE:
        return False
    message.status = "pending"
    message.next_attempt_at = now
    message.lease_until = None
    message.lease_owner = None
    message.failed_at = None
    session.flush()
    after_commit(session, wake)
    return True


class Outages:
    """Channels whose server did not answer: their messages wait instead of each timing out.

    window None: blocked for good (one round of deliver_due). Otherwise blocked for window
    seconds, after which one message goes through as a probe; if it gets through, the
    channel is open again.
    """

    def __init__(self, window: float | None = None) -> None:
        self.window = window
        self._down: dict[str, tuple[DeliveryError, float]] = {}
        self._lock = threading.Lock()

    def blocked(self, channel: str) -> DeliveryError | None:
        """Return an error for a message held back, or None to let it through."""
        with self._lock:
            found = self._down.get(channel)
            if found is None:
                return None
            error, until = found
            now = time.monotonic()
            if self.window is not None and now >= until:
                # Let this one message probe the server; hold the others back meanwhile.
                self._down[channel] = (error, now + self.window)
                return None
            wait = max(until - now, 0.2) if self.window is not None else UNTRIED_RETRY_SECONDS
            return DeliveryError(f"not tried: {error}", retry=True, retry_after=wait, untried=True)

    def record(self, channel: str, error: DeliveryError) -> None:
        with self._lock:
            until = time.monotonic() + (self.window or 0.0)
            self._down[channel] = (self._down.get(channel, (error, 0.0))[0], until)

    def clear(self, channel: str) -> bool:
        """Open the channel again; say whether it had been down."""
        with self._lock:
            return self._down.pop(channel, None) is not None


def send_one(
    message: Outgoing,
    senders: Mapping[str, Sender],
    outages: Outages,
    at: Callable[[], datetime],
) -> Result:
    """Try one message (never raises): accepted, refused, or held back by an outage."""
    sender = senders.get(message.channel)
    if sender is None:
        error = DeliveryError(f"no sender is configured for {message.channel}", retry=False)
        return Result(message, at(), error=error)
    held_back = outages.blocked(message.channel)
    if held_back is not None:
        return Result(message, at(), error=held_back)
    try:
        sender.send(message)
    except DeliveryError as exc:
        # Row ids only: recipients and content stay out of operational logs.
        log.warning("outbox %s: attempt %s failed: %s", message.id, message.attempts, exc)
        if exc.server_down:
            outages.record(message.channel, exc)
        return Result(message, at(), error=exc)
    except Exception as exc:  # a sender bug must not kill the deliverer
        log.exception("outbox %s: sender crashed", message.id)
        error = DeliveryError(f"unexpected error: {type(exc).__name__}", retry=True)
        return Result(message, at(), error=error)
    return Result(message, at(), via=sender.name)


def send_all(
    messages: Sequence[Outgoing],
    senders: Mapping[str, Sender],
    now: datetime | None = None,
    clock: Callable[[], datetime] = now_utc,
    parallel: int = PARALLEL,
) -> list[Result]:
    """Send messages, several at a time, with no transaction open.

    When a server does not answer at all (refused, timed out), the rest of the round for
    that channel is left untried, so a dead mail server costs one timeout per round rather
    than one per message.
    """
    outages = Outages()

    def at() -> datetime:
        return now or clock()

    if parallel <= 1 or len(messages) <= 1:
        return [send_one(message, senders, outages, at) for message in messages]
    with ThreadPoolExecutor(max_workers=min(parallel, len(messages))) as pool:
        return list(pool.map(lambda m: send_one(m, senders, outages, at), messages))


def deliver_due(
    session_factory: sessionmaker[Session],
    senders: Mapping[str, Sender],
    now: datetime | None = None,
    *,
    owner: str | None = None,
    policy: Policy | None = None,
    limit: int = BATCH,
    clock: Callable[[], datetime] = now_utc,
    parallel: int = PARALLEL,
) -> int:
    """Claim one batch of due rows, send them, and mark them; return how many were accepted."""
    policy = policy or Policy()
    owner = owner or default_owner()
    claimed = claim(session_factory, now or clock(), owner, policy, limit)
    if not claimed:
        return 0
    results = send_all(claimed, senders, now, clock, parallel)
    return record_results(session_factory, results, owner, policy)


def deliver_leased(
    session_factory: sessionmaker[Session],
    senders: Mapping[str, Sender],
    ids: Sequence[int],
    owner: str,
    policy: Policy,
    parallel: int = PARALLEL,
) -> int:
    """Deliver rows leased to this deliverer when they were enqueued: no claim round trip."""
    messages = load_leased(session_factory, ids, owner)
    if not messages:
        return 0
    return record_results(
        session_factory, send_all(messages, senders, parallel=parallel), owner, policy
    )


class Deliverer(threading.Thread):
    """Deliver in the background, as a pipeline.

    Rows enqueued in this process are leased to this deliverer in the same transaction and
    handed over right after the commit (see outbox.register_local); they are sent at once
    by a standing pool of sender threads, while one marker thread records results in
    batches, so a wait for the database's write lock never holds up the next send.
    Everything else (retries, rows of other processes, leases that ran out) is found by
    polling every second.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        senders: Mapping[str, Sender],
        policy: Policy | None = None,
        poll_seconds: float = 1.0,
        links: Links | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        parallel: int = PARALLEL,
    ) -> None:
        super().__init__(name="kiosk-deliverer", daemon=True)
        self.session_factory = session_factory
        self.senders = senders
        self.links = links
        self.policy = policy or Policy()
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.parallel = parallel
        self.owner = default_owner()
        self.stopping = threading.Event()
        self.heartbeat: datetime | None = None
        self.handoff = outbox.LocalHandoff(self.owner, self.policy.lease_seconds)
        self.outages = Outages(window=OUTAGE_PROBE_SECONDS)
        self.results: queue.Queue[Result] = queue.Queue()
        self.in_flight = 0
        self._flight_lock = threading.Lock()
        self.pool: ThreadPoolExecutor | None = None
        self.marker = threading.Thread(target=self._mark_loop, name="kiosk-marker", daemon=True)
        self.recovered: set[str] = set()

    def run(self) -> None:
        self.pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="kiosk-send")
        self.marker.start()
        outbox.register_local(self.handoff)
        try:
            while not self.stopping.is_set():
                wake_event.clear()
                busy = False
                try:
                    busy = self.round()
                except Exception:
                    log.exception("delivery round failed; trying again shortly")
                if not busy:
                    wake_event.wait(self.poll_seconds)
        finally:
            outbox.unregister_local(self.handoff)
            self.pool.shutdown(wait=True)
            self.marker.join(5.0)

    def round(self) -> bool:
        """One pass: handed-over rows, escalations, due rows; say if there is more to do."""
        handed = self.handoff.drain()
        if handed:
            for message in load_leased(self.session_factory, handed, self.owner):
                self._submit(message)
        now = now_utc()
        if self.links is not None:
            # Escalations enqueue rows, which are handed over like any other.
            escalate_due(self.session_factory, self.links, now)
        claimed: list[Outgoing] = []
        if self._idle_senders() > 0:
            claimed = claim(
                self.session_factory, now, self.owner, self.policy, self._idle_senders()
            )
            for message in claimed:
                self._submit(message)
        if self.heartbeat is None or (now - self.heartbeat).total_seconds() >= (
            self.heartbeat_seconds
        ):
            record_heartbeat(self.session_factory, self.owner, now)
            self.heartbeat = now
        return bool(claimed) or self.handoff.pending()

    def _idle_senders(self) -> int:
        with self._flight_lock:
            return max(0, self.parallel * 2 - self.in_flight)

    def _submit(self, message: Outgoing) -> None:
        assert self.pool is not None
        with self._flight_lock:
            self.in_flight += 1
        self.pool.submit(self._send, message)

    def _send(self, message: Outgoing) -> None:
        try:
            result = send_one(message, self.senders, self.outages, now_utc)
            if result.error is None and self.outages.clear(message.channel):
                self.recovered.add(message.channel)
            self.results.put(result)
        finally:
            with self._flight_lock:
                self.in_flight -= 1

    def _mark_loop(self) -> None:
        """Record results in batches: one short write transaction for whatever has arrived."""
        while not (self.stopping.is_set() and self.results.empty() and self.in_flight == 0):
            try:
                first = self.results.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            while True:
                try:
                    batch.append(self.results.get_nowait())
                except queue.Empty:
                    break
            try:
                record_results(self.session_factory, batch, self.owner, self.policy)
                for channel in list(self.recovered):
                    self.recovered.discard(channel)
                    due_now(self.session_factory, channel, now_utc())
            except Exception:
                # Unmarked rows keep their lease; once it runs out they are sent again,
                # with the same id, which receivers use to drop the duplicate.
                log.exception("could not record %d delivery results", len(batch))

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        wake_event.set()
        self.join(timeout)


def due_now(session_factory: sessionmaker[Session], channel: str, now: datetime) -> None:
    """A server is back: its waiting messages are due at once, not at their backoff time."""
    with writing(), session_factory() as session, session.begin():
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.channel == channel,
                OutboxMessage.status == "pending",
                OutboxMessage.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    wake()
