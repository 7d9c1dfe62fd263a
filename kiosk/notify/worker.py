"""Deliver due outbox rows: claim with a lease, send outside any transaction, mark each row."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from kiosk.clock import now_utc
from kiosk.db import writing
from kiosk.models import Encounter, OutboxMessage
from kiosk.notify.channels import DeliveryError, Outgoing, Sender
from kiosk.notify.escalation import escalate_due
from kiosk.notify.links import Links
from kiosk.notify.outbox import wake_event

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
BATCH = 20


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


def claim(
    session_factory: sessionmaker[Session], now: datetime, owner: str, policy: Policy, limit: int
) -> list[Outgoing]:
    """Lease due rows in one short transaction, so other workers skip them."""
    with writing(), session_factory() as session, session.begin():
        due = or_(
            and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
            and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
        )
        rows = session.scalars(
            select(OutboxMessage)
            .where(due)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        claimed = []
        for row in rows:
            row.status = "sending"
            row.lease_owner = owner
            row.lease_until = now + timedelta(seconds=policy.lease_seconds)
            row.attempts += 1
            claimed.append(
                Outgoing(
                    id=row.id,
                    key=row.idempotency_key,
                    channel=row.channel,
                    kind=row.kind,
                    recipient=row.recipient,
                    subject=row.subject,
                    body=row.body,
                    payload=row.payload,
                    attempts=row.attempts,
                )
            )
        return claimed


def mark_sent(
    session_factory: sessionmaker[Session], message: Outgoing, owner: str, via: str, at: datetime
) -> None:
    with writing(), session_factory() as session, session.begin():
        row = session.get(OutboxMessage, message.id)
        if row is None or row.lease_owner != owner or row.status != "sending":
            return
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
            )


def mark_failed(
    session_factory: sessionmaker[Session],
    message: Outgoing,
    owner: str,
    error: DeliveryError,
    at: datetime,
    policy: Policy,
) -> str:
    """Schedule a retry, or give up when the error is permanent or the row is too old."""
    with writing(), session_factory() as session, session.begin():
        row = session.get(OutboxMessage, message.id)
        if row is None or row.lease_owner != owner or row.status != "sending":
            return "lost-lease"
        row.last_error = str(error)[:500]
        row.lease_until = None
        too_old = (at - row.created_at).total_seconds() >= policy.give_up_after
        if not error.retry or too_old:
            row.status = "failed"
            row.failed_at = at
        else:
            row.status = "pending"
            row.next_attempt_at = at + timedelta(
                seconds=policy.delay(row.attempts, error.retry_after)
            )
        return row.status


def deliver_due(
    session_factory: sessionmaker[Session],
    senders: Mapping[str, Sender],
    now: datetime | None = None,
    *,
    owner: str | None = None,
    policy: Policy | None = None,
    limit: int = BATCH,
    clock: Callable[[], datetime] = now_utc,
) -> int:
    """Deliver one batch of due rows; return how many were accepted by their channel."""
    policy = policy or Policy()
    owner = owner or default_owner()
    moment = now or clock()
    delivered = 0
    for message in claim(session_factory, moment, owner, policy, limit):
        at = now or clock()
        sender = senders.get(message.channel)
        if sender is None:
            error = DeliveryError(f"no sender is configured for {message.channel}", retry=False)
            mark_failed(session_factory, message, owner, error, at, policy)
            continue
        try:
            sender.send(message)
        except DeliveryError as exc:
            # Row ids only: recipients and content stay out of operational logs.
            log.warning("outbox %s: attempt %s failed: %s", message.id, message.attempts, exc)
            mark_failed(session_factory, message, owner, exc, now or clock(), policy)
            continue
        except Exception as exc:  # a sender bug must not kill the deliverer
            log.exception("outbox %s: sender crashed", message.id)
            error = DeliveryError(f"unexpected error: {type(exc).__name__}", retry=True)
            mark_failed(session_factory, message, owner, error, now or clock(), policy)
            continue
        mark_sent(session_factory, message, owner, sender.name, now or clock())
        delivered += 1
    return delivered


class Deliverer(threading.Thread):
    """Deliver in the background: woken at once after a commit, otherwise polling every second."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        senders: Mapping[str, Sender],
        policy: Policy | None = None,
        poll_seconds: float = 1.0,
        links: Links | None = None,
    ) -> None:
        super().__init__(name="kiosk-deliverer", daemon=True)
        self.session_factory = session_factory
        self.senders = senders
        self.links = links
        self.policy = policy or Policy()
        self.poll_seconds = poll_seconds
        self.owner = default_owner()
        self.stopping = threading.Event()
        self.heartbeat: datetime | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            wake_event.clear()
            try:
                if self.links is not None:
                    # Escalations enqueue rows, which this same round then delivers.
                    escalate_due(self.session_factory, self.links, now_utc())
                sent = deliver_due(
                    self.session_factory, self.senders, owner=self.owner, policy=self.policy
                )
                self.heartbeat = now_utc()
            except Exception:
                log.exception("delivery round failed; trying again shortly")
                sent = 0
            if sent == 0:
                wake_event.wait(self.poll_seconds)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        wake_event.set()
        self.join(timeout)
