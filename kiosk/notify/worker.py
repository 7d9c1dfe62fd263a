"""Deliver outbox rows: one engine (claim, send, mark) that the background Deliverer
(kiosk/notify/deliverer.py) runs as a pipeline and deliver_due() runs one round of.

Rows are leased to one deliverer in a short transaction; a send starts only while that
deliverer holds the lease; no transaction is open while sending; and each result is marked
with its own conditional update (see kiosk/notify/leases.py). What delivery means for an
encounter (escalate it when nobody acknowledged; at once when its alert failed for good)
is decided by the domain and reaches the engine as Hooks, wired in kiosk/delivery.py.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from kiosk.clock import now_utc
from kiosk.notify.channels import Outgoing, Sender
from kiosk.notify.leases import (
    AlertFailed,
    claim,
    due_now,
    extend_leases,
    load_leased,
    mark_results,
    release,
)
from kiosk.notify.sending import OUTAGE_PROBE_SECONDS, Outages, Policy, Result, send_one

log = logging.getLogger(__name__)

BATCH = 20
# Messages sent at the same time by one deliverer (each on its own connection).
PARALLEL = 8
# A send starts at once on a row with this much of its lease left, the lease being extended
# alongside; with less, the lease is extended (and so checked) before the send.
HOLD_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class Hooks:
    """What the domain does for delivery; notify decides nothing (kiosk/delivery.py wires them).

    escalate: one escalation round at `now`; returns how many encounters escalated (their
    rows are then handed over or claimed like any other).
    alert_failed: an alert row failed for good; run in the transaction that marks it, and
    True if its encounter now escalates at once (the deliverer is then woken).
    """

    escalate: Callable[[datetime], int]
    alert_failed: AlertFailed


def default_owner() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Engine:
    """Claim, send and mark for one lease owner: the one delivery engine.

    The background Deliverer runs it as a pipeline; deliver_due() runs one round of it.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        senders: Mapping[str, Sender],
        *,
        hooks: Hooks,
        owner: str | None = None,
        policy: Policy | None = None,
        outages: Outages | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.session_factory = session_factory
        self.senders = senders
        self.owner = owner or default_owner()
        self.policy = policy or Policy()
        self.hooks = hooks
        self.outages = outages if outages is not None else Outages(window=OUTAGE_PROBE_SECONDS)
        self.clock = clock
        # Extends a lease in the background once a send has started (see hold); None: at once.
        self.extender: Callable[[int], None] | None = None
        self._recovered: set[str] = set()
        self._recovered_lock = threading.Lock()

    def escalate(self, now: datetime) -> int:
        """Run the domain's escalation round (its rows are then handed over or claimed like
        any other); return how many encounters escalated."""
        return self.hooks.escalate(now)

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
            alert_failed=self.hooks.alert_failed,
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
    hooks: Hooks,
    owner: str | None = None,
    policy: Policy | None = None,
    limit: int = BATCH,
    clock: Callable[[], datetime] = now_utc,
    parallel: int = PARALLEL,
) -> int:
    """Run one round of the engine (claim, send, mark); return how many were accepted.

    When a server does not answer at all (refused, timed out), the rest of the round for
    that channel is left untried, so a dead mail server costs one timeout per round rather
    than one per message. Escalation is not run here (see Engine.escalate); an alert that
    fails for good goes to hooks.alert_failed.
    """
    engine = Engine(
        session_factory,
        senders,
        hooks=hooks,
        owner=owner,
        policy=policy,
        outages=Outages(),
        clock=clock,
    )
    return engine.round(now, limit=limit, parallel=parallel)
