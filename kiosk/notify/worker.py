"""Deliver outbox rows: one engine (claim, send, mark) that the background Deliverer runs as a
pipeline and deliver_due() runs one round of.

Rows are leased to one deliverer in a short transaction; a send starts only while that
deliverer holds the lease; no transaction is open while sending; and each result is marked
with its own conditional update (WHERE lease_owner = me AND status = 'sending'), so a
deliverer whose lease ran out changes nothing and one row that cannot be marked never
leaves the others unmarked.
"""

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

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from kiosk.clock import now_utc
from kiosk.db import after_commit, unit_of_work
from kiosk.models import Contact, Encounter, OutboxMessage, WorkerHeartbeat
from kiosk.notify import outbox
from kiosk.notify.alerts import ALERT_KINDS
from kiosk.notify.channels import DeliveryError, Outgoing, Sender
from kiosk.notify.escalation import LAST_LEVEL, escalate_due
from kiosk.notify.links import Links
from kiosk.notify.outbox import HANDOFF_LEASE_SECONDS, wake, wake_event
from kiosk.protocol.state import Status

log = logging.getLogger(__name__)

# How long a send may take before another deliverer may take the row over.
LEASE_SECONDS = 60
BATCH = 20
# Messages sent at the same time by one deliverer (each on its own connection).
PARALLEL = 8
# After a server did not answer, one message probes it again after this long.
OUTAGE_PROBE_SECONDS = 1.0
# A send starts at once on a row with this much of its lease left, the lease being extended
# alongside; with less, the lease is extended (and so checked) before the send.
HOLD_MARGIN_SECONDS = 5.0
# The background deliverer extends that lease once a send has taken this long: most sends
# are over sooner, and cost no extra write.
EXTEND_AFTER_SECONDS = 1.0
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
        encounter_id=row.encounter_id,
        created_at=row.created_at,
        lease_until=row.lease_until,
    )


def claim(
    session_factory: sessionmaker[Session], now: datetime, owner: str, policy: Policy, limit: int
) -> list[Outgoing]:
    """Lease due rows in one short transaction, so other workers skip them."""
    if not anything_due(session_factory, now):
        return []
    with unit_of_work(session_factory) as session:
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


def extend_leases(
    session_factory: sessionmaker[Session], ids: Sequence[int], owner: str, until: datetime
) -> int:
    """Extend this deliverer's leases on rows; return on how many it still held one."""
    if not ids:
        return 0
    with unit_of_work(session_factory) as session:
        return _extend(session, ids, owner, until)


def _extend(session: Session, ids: Sequence[int], owner: str, until: datetime) -> int:
    done = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(ids),
            OutboxMessage.lease_owner == owner,
            OutboxMessage.status == "sending",
        )
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    )
    held = int(done.rowcount)  # type: ignore[attr-defined]
    if held < len(ids):
        # Taken over by another deliverer: its mark will say (and log) which.
        log.warning(
            "extended the lease of %d of %d rows being sent (ids %s)",
            held,
            len(ids),
            ",".join(map(str, ids)),
        )
    return held


def release(
    session_factory: sessionmaker[Session], ids: Sequence[int], owner: str, now: datetime
) -> int:
    """Give leased rows back unsent (a stopping deliverer): pending and due now, for anyone."""
    if not ids:
        return 0
    with unit_of_work(session_factory) as session:
        done = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                OutboxMessage.lease_owner == owner,
                OutboxMessage.status == "sending",
            )
            .values(
                status="pending",
                lease_until=now,
                lease_owner=None,
                next_attempt_at=now,
                # Never tried: the try counted at the claim (or the handover) does not count.
                attempts=case((OutboxMessage.attempts > 0, OutboxMessage.attempts - 1), else_=0),
            )
            .execution_options(synchronize_session=False)
        )
        count = int(done.rowcount)  # type: ignore[attr-defined]
    if count:
        wake()
    return count


def _held_by(message_id: int, owner: str) -> tuple[Any, ...]:
    """The row, only while this deliverer holds its lease."""
    return (
        OutboxMessage.id == message_id,
        OutboxMessage.lease_owner == owner,
        OutboxMessage.status == "sending",
    )


def mark_results(
    session_factory: sessionmaker[Session],
    results: Sequence[Result],
    owner: str,
    policy: Policy,
    extend: Sequence[int] = (),
    until: datetime | None = None,
) -> int:
    """Record each result with its own conditional update; return how many were accepted.

    One short transaction for whatever has arrived (one disk sync on SQLite, and the write
    lock held briefly). If any row cannot be marked, that transaction is rolled back and
    each row is recorded in a transaction of its own, so one bad row never leaves the others
    unmarked. A row that stays unmarked keeps its lease; once that runs out it is sent again
    with the same idempotency key. The transaction first extends the leases of rows whose
    sends are under way (`extend`).
    """
    if not results and not extend:
        return 0
    try:
        with unit_of_work(session_factory) as session:
            if extend and until is not None:
                _extend(session, extend, owner, until)
            outcomes = [_mark(session, result, owner, policy) for result in results]
    except Exception as exc:
        log.warning(
            "could not record %d delivery results together (%s); recording each alone",
            len(results),
            type(exc).__name__,
        )
        if extend and until is not None:
            try:
                extend_leases(session_factory, extend, owner, until)
            except Exception as again:
                log.error("could not extend %d leases (%s)", len(extend), type(again).__name__)
        outcomes = [_mark_alone(session_factory, result, owner, policy) for result in results]
    return outcomes.count("sent")


def _mark_alone(
    session_factory: sessionmaker[Session], result: Result, owner: str, policy: Policy
) -> str:
    try:
        with unit_of_work(session_factory) as session:
            return _mark(session, result, owner, policy)
    except Exception as exc:
        _log_unmarked(result.message, exc)
        return "error"


def _log_unmarked(message: Outgoing, exc: BaseException) -> None:
    # The error's type only: database errors quote the statement's parameters.
    log.error(
        "outbox %s (%s): could not record the result (%s); it is sent again once its lease "
        "runs out",
        message.id,
        message.kind,
        type(exc).__name__,
    )


def _mark(session: Session, result: Result, owner: str, policy: Policy) -> str:
    """Mark one row if this deliverer still holds it; return sent, pending, failed or lost."""
    message = result.message
    if result.error is None:
        outcome = "sent"
        values: dict[str, Any] = {
            "status": "sent",
            "sent_at": result.at,
            "delivered_via": result.via or "",
            "lease_until": None,
            "last_error": None,
        }
    else:
        outcome, values = _failure(message, result.error, result.at, policy)
    done = session.execute(
        update(OutboxMessage)
        .where(*_held_by(message.id, owner))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        log.warning(
            "outbox %s (%s): lease lost before the result (%s) was recorded; the row's new "
            "owner decides",
            message.id,
            message.kind,
            outcome,
        )
        return "lost"
    if message.encounter_id is not None:
        if outcome == "sent" and message.kind == "alert":
            session.execute(
                update(Encounter)
                .where(
                    Encounter.id == message.encounter_id,
                    Encounter.first_alert_sent_at.is_(None),
                )
                .values(first_alert_sent_at=result.at)
                .execution_options(synchronize_session=False)
            )
        elif outcome == "failed" and message.kind in ALERT_KINDS:
            _escalate_now(session, message.encounter_id, result.at)
    return outcome


def _failure(
    message: Outgoing, error: DeliveryError, at: datetime, policy: Policy
) -> tuple[str, dict[str, Any]]:
    """Schedule a retry, or give up when the error is permanent or the row is too old."""
    # Held back, not tried: it does not count.
    attempts = max(message.attempts - 1, 0) if error.untried else message.attempts
    values: dict[str, Any] = {
        "last_error": str(error)[:500],
        "lease_until": None,
        "attempts": attempts,
    }
    too_old = (
        message.created_at is not None
        and (at - message.created_at).total_seconds() >= policy.give_up_after
    )
    if not error.retry or too_old:
        return "failed", {**values, "status": "failed", "failed_at": at}
    wait = (
        error.retry_after
        if error.untried and error.retry_after is not None
        else policy.delay(attempts, error.retry_after)
    )
    return "pending", {
        **values,
        "status": "pending",
        "next_attempt_at": at + timedelta(seconds=wait),
    }


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
    with unit_of_work(session_factory) as session:
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


class Engine:
    """Claim, send and mark for one lease owner: the one delivery engine.

    The background Deliverer runs it as a pipeline; deliver_due() runs one round of it.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        senders: Mapping[str, Sender],
        *,
        owner: str | None = None,
        policy: Policy | None = None,
        links: Links | None = None,
        outages: Outages | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.session_factory = session_factory
        self.senders = senders
        self.owner = owner or default_owner()
        self.policy = policy or Policy()
        self.links = links
        self.outages = outages if outages is not None else Outages(window=OUTAGE_PROBE_SECONDS)
        self.clock = clock
        # Extends a lease in the background once a send has started (see hold); None: at once.
        self.extender: Callable[[int], None] | None = None
        self._recovered: set[str] = set()
        self._recovered_lock = threading.Lock()

    def escalate(self, now: datetime) -> int:
        """Escalate due encounters (their rows are then handed over or claimed like any)."""
        if self.links is None:
            return 0
        return escalate_due(self.session_factory, self.links, now)

    def claim(self, now: datetime, limit: int) -> list[Outgoing]:
        """Lease up to limit due rows to this owner."""
        if limit <= 0:
            return []
        return claim(self.session_factory, now, self.owner, self.policy, limit)

    def handed(self, ids: Sequence[int]) -> list[Outgoing]:
        """The rows leased to this owner at enqueue that it still holds."""
        return load_leased(self.session_factory, ids, self.owner)

    def send(self, message: Outgoing, at: Callable[[], datetime] | None = None) -> Result | None:
        """Send one row this owner holds (never raises); None if its lease was lost first."""
        at = at or self.clock
        if not self.hold(message, at()):
            return None
        result = send_one(message, self.senders, self.outages, at)
        if result.error is None and self.outages.clear(message.channel):
            with self._recovered_lock:
                self._recovered.add(message.channel)
        return result

    def hold(self, message: Outgoing, now: datetime) -> bool:
        """Check the lease before a send starts and extend it for the send; False if lost.

        A row claimed moments ago holds a whole lease: the claim was the check. A row handed
        over at enqueue holds a short lease, which nobody else may take before it ends: with
        HOLD_MARGIN_SECONDS of it left the send starts at once and the lease is extended
        alongside, off the send's path (`extender`: the background deliverer's marker thread,
        which extends it if the send is still under way after EXTEND_AFTER_SECONDS).
        Otherwise the lease is extended first (a write), only if this owner still holds it.
        """
        lease = timedelta(seconds=self.policy.lease_seconds)
        left = message.lease_until - now if message.lease_until is not None else None
        if left is not None and left >= lease / 2:
            return True
        if (
            left is not None
            and left >= timedelta(seconds=HOLD_MARGIN_SECONDS)
            and self.extender is not None
        ):
            self.extender(message.id)
            return True
        try:
            held = extend_leases(self.session_factory, [message.id], self.owner, now + lease) == 1
        except Exception as exc:
            log.error(
                "outbox %s (%s): could not extend the lease (%s); not sent now",
                message.id,
                message.kind,
                type(exc).__name__,
            )
            return False
        if not held:
            log.warning(
                "outbox %s (%s): lease lost before sending; not sent by this deliverer",
                message.id,
                message.kind,
            )
        return held

    def mark(self, results: Sequence[Result], extend: Sequence[int] = ()) -> int:
        """Record results (each row on its own) and extend the leases of rows whose sends
        started (see hold) in one short transaction; return how many were accepted."""
        finished = {result.message.id for result in results}
        accepted = mark_results(
            self.session_factory,
            results,
            self.owner,
            self.policy,
            extend=[i for i in extend if i not in finished],  # their sends are over
            until=self.clock() + timedelta(seconds=self.policy.lease_seconds),
        )
        with self._recovered_lock:
            recovered, self._recovered = self._recovered, set()
        for channel in recovered:
            try:
                due_now(self.session_factory, channel, self.clock())
            except Exception as exc:
                log.error("could not make %s messages due again (%s)", channel, type(exc).__name__)
        return accepted

    def release(self, ids: Sequence[int]) -> int:
        """Give rows back unsent; return how many this owner still held."""
        return release(self.session_factory, ids, self.owner, self.clock())

    def round(
        self, now: datetime | None = None, limit: int = BATCH, parallel: int = PARALLEL
    ) -> int:
        """Claim due rows, send them, mark each; return how many were accepted."""

        def at() -> datetime:
            return now or self.clock()

        claimed = self.claim(at(), limit)
        if not claimed:
            return 0
        if parallel <= 1 or len(claimed) <= 1:
            sent = [self.send(message, at) for message in claimed]
        else:
            with ThreadPoolExecutor(max_workers=min(parallel, len(claimed))) as pool:
                sent = list(pool.map(lambda message: self.send(message, at), claimed))
        return self.mark([result for result in sent if result is not None])


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
    """Run one round of the engine (claim, send, mark); return how many were accepted.

    When a server does not answer at all (refused, timed out), the rest of the round for
    that channel is left untried, so a dead mail server costs one timeout per round rather
    than one per message.
    """
    engine = Engine(
        session_factory, senders, owner=owner, policy=policy, outages=Outages(), clock=clock
    )
    return engine.round(now, limit=limit, parallel=parallel)


class Deliverer(threading.Thread):
    """Run the engine in the background, as a pipeline.

    Rows enqueued in this process are leased to this deliverer in the same transaction (a
    short lease, HANDOFF_LEASE_SECONDS) and handed over right after the commit (see
    outbox.register_local); a standing pool of sender threads sends them at once, each send
    checking the lease as it starts and having it extended for the send (Engine.hold),
    while one marker thread extends leases and records results, so a wait for the
    database's write lock never holds up a send. Everything else (retries, rows of other
    processes, leases that ran out) is found by polling every second, and claimed only as
    far as senders are free. Stopping, it finishes the sends under way and gives back what
    it was handed but has not started.
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
        self.engine = Engine(session_factory, senders, policy=policy, links=links)
        self.session_factory = session_factory
        self.owner = self.engine.owner
        self.policy = self.engine.policy
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.parallel = parallel
        self.stopping = threading.Event()
        self.heartbeat: datetime | None = None
        self.rounds = 0
        self.handoff = outbox.LocalHandoff(self.owner, HANDOFF_LEASE_SECONDS)
        # For the marker: results to record, and ids of rows whose leases to extend.
        self.results: queue.Queue[Result | int] = queue.Queue()
        self.engine.extender = self.results.put
        self.in_flight = 0
        self._flying: set[int] = set()
        self._flight_lock = threading.Lock()
        self._more_due = False
        self.pool: ThreadPoolExecutor | None = None
        self.marker = threading.Thread(target=self._mark_loop, name="kiosk-marker", daemon=True)

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
            # New rows are no longer leased to this deliverer; what it was handed and has
            # not started is given back, what is being sent is finished and marked.
            outbox.unregister_local(self.handoff)
            self._release(self.handoff.drain())
            self.pool.shutdown(wait=True)
            self.marker.join(5.0)
            self._release(self.handoff.drain())  # handed over while it was stopping

    def round(self) -> bool:
        """One pass: handed-over rows, escalations, due rows; say if there is more to do."""
        handed = self.handoff.drain()
        if handed:
            for message in self.engine.handed(handed):
                self._submit(message)
        now = now_utc()
        try:
            # Escalations enqueue rows, which are handed over like any other.
            self.engine.escalate(now)
        except Exception:
            log.exception("escalation round failed; delivering anyway")
        free = self.free_senders()
        claimed = self.engine.claim(now, free)
        # Every free sender got a row: more may be due once one is free again.
        self._more_due = bool(claimed) and len(claimed) >= free
        for message in claimed:
            self._submit(message)
        if self.heartbeat is None or (now - self.heartbeat).total_seconds() >= (
            self.heartbeat_seconds
        ):
            record_heartbeat(self.session_factory, self.owner, now)
            self.heartbeat = now
        self.rounds += 1
        return bool(claimed) or self.handoff.pending()

    def free_senders(self) -> int:
        """Senders with nothing to send: the most rows a round may claim."""
        with self._flight_lock:
            return max(0, self.parallel - self.in_flight)

    def _submit(self, message: Outgoing) -> None:
        assert self.pool is not None
        with self._flight_lock:
            if message.id in self._flying:
                return  # handed over and claimed again after its short lease ran out
            self._flying.add(message.id)
            self.in_flight += 1
        self.pool.submit(self._send, message)

    def _send(self, message: Outgoing) -> None:
        try:
            if self.stopping.is_set():
                self._release([message.id])
                return
            result = self.engine.send(message)
            if result is not None:
                self.results.put(result)
        except Exception:
            log.exception("outbox %s: send failed unexpectedly", message.id)
        finally:
            with self._flight_lock:
                self.in_flight -= 1
                self._flying.discard(message.id)
            if self._more_due:
                wake_event.set()  # a sender is free: claim the next due row now

    def _release(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        try:
            self.engine.release(ids)
        except Exception as exc:
            # They keep their lease, short for handed-over rows; then anyone takes them.
            log.error("could not give back %d rows (%s)", len(ids), type(exc).__name__)

    def _mark_loop(self) -> None:
        """Record results as they arrive, a batch at a time, and extend the leases of sends
        still under way after EXTEND_AFTER_SECONDS (most are over by then and need none)."""
        started: dict[int, float] = {}  # row id -> when its send started (monotonic)
        while not (self.stopping.is_set() and self.results.empty() and self.in_flight == 0):
            batch: list[Result | int] = []
            try:
                batch.append(self.results.get(timeout=EXTEND_AFTER_SECONDS / 2))
                while True:
                    batch.append(self.results.get_nowait())
            except queue.Empty:
                pass
            now = time.monotonic()
            results = []
            # A send's extension is queued before its result, so it is never applied after.
            for item in batch:
                if isinstance(item, Result):
                    results.append(item)
                    started.pop(item.message.id, None)
                else:
                    started.setdefault(item, now)
            extend = [i for i, at in started.items() if now - at >= EXTEND_AFTER_SECONDS]
            for message_id in extend:
                del started[message_id]
            if not (results or extend):
                continue
            try:
                self.engine.mark(results, extend=extend)
            except Exception:
                # Unmarked rows keep their lease; once it runs out they are sent again,
                # with the same id, which receivers use to drop the duplicate.
                log.exception("could not record %d delivery results", len(results))

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        wake_event.set()
        self.join(timeout)


def due_now(session_factory: sessionmaker[Session], channel: str, now: datetime) -> None:
    """A server is back: its waiting messages are due at once, not at their backoff time."""
    with unit_of_work(session_factory) as session:
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
