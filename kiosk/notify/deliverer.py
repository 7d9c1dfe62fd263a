"""The background deliverer: the engine run as a pipeline, one per server process."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from kiosk.clock import now_utc
from kiosk.notify import outbox
from kiosk.notify.channels import Outgoing, Sender
from kiosk.notify.leases import record_heartbeat
from kiosk.notify.outbox import HANDOFF_LEASE_SECONDS, wake_event
from kiosk.notify.sending import Policy, Result
from kiosk.notify.worker import PARALLEL, Engine, Hooks

log = logging.getLogger(__name__)

# The background deliverer extends a send's lease once the send has taken this long: most
# sends are over sooner, and cost no extra write.
EXTEND_AFTER_SECONDS = 1.0
# A deliverer records that it is alive at most this often (/healthz allows a minute).
HEARTBEAT_SECONDS = 5.0


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
        *,
        hooks: Hooks,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        parallel: int = PARALLEL,
    ) -> None:
        super().__init__(name="kiosk-deliverer", daemon=True)
        self.engine = Engine(session_factory, senders, hooks=hooks, policy=policy)
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
