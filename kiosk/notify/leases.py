"""The delivery engine's SQL: lease due rows, extend and give back leases, mark results.

Each is a short transaction of its own. A result is marked with a conditional update
(WHERE lease_owner = me AND status = 'sending'), so a deliverer whose lease ran out changes
nothing. What a failed alert means for its encounter is the domain's: the engine passes
that to the alert_failed hook, in the transaction that marks the row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from kiosk import audit
from kiosk.db import after_commit, unit_of_work
from kiosk.models import Contact, Encounter, OutboxMessage, WorkerHeartbeat
from kiosk.notify.channels import DeliveryError, Outgoing
from kiosk.notify.outbox import ALERT_KINDS, wake
from kiosk.notify.sending import Policy, Result

log = logging.getLogger(__name__)

# Heartbeats of workers gone this long are deleted, so the table stays small.
HEARTBEAT_KEEP = timedelta(days=1)
# Rows the outbox page may send again at once.
RETRYABLE = ("failed", "pending", "dead")

# The domain's answer to an alert that failed for good: (session, encounter id, when), run
# in the transaction that marks the row; True if the encounter escalates at once.
AlertFailed = Callable[[Session, int, datetime], bool]


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
    *,
    alert_failed: AlertFailed,
    extend: Sequence[int] = (),
    until: datetime | None = None,
) -> int:
    """Record each result with its own conditional update; return how many were accepted.

    One short transaction for whatever has arrived (one disk sync on SQLite, and the write
    lock held briefly). If any row cannot be marked, that transaction is rolled back and
    each row is recorded in a transaction of its own, so one bad row never leaves the others
    unmarked. A row that stays unmarked keeps its lease; once that runs out it is sent again
    with the same idempotency key. The transaction first extends the leases of rows whose
    sends are under way (`extend`). An alert marked failed is passed to `alert_failed` in
    the same transaction.
    """
    if not results and not extend:
        return 0
    try:
        with unit_of_work(session_factory) as session:
            if extend and until is not None:
                _extend(session, extend, owner, until)
            outcomes = [_mark(session, result, owner, policy, alert_failed) for result in results]
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
        outcomes = [
            _mark_alone(session_factory, result, owner, policy, alert_failed) for result in results
        ]
    return outcomes.count("sent")


def _mark_alone(
    session_factory: sessionmaker[Session],
    result: Result,
    owner: str,
    policy: Policy,
    alert_failed: AlertFailed,
) -> str:
    try:
        with unit_of_work(session_factory) as session:
            return _mark(session, result, owner, policy, alert_failed)
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


def _mark(
    session: Session, result: Result, owner: str, policy: Policy, alert_failed: AlertFailed
) -> str:
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
            first = session.execute(
                update(Encounter)
                .where(
                    Encounter.id == message.encounter_id,
                    Encounter.first_alert_sent_at.is_(None),
                )
                .values(first_alert_sent_at=result.at)
                .execution_options(synchronize_session=False)
            )
            if first.rowcount:  # type: ignore[attr-defined]
                # The encounter's row changed outside the ORM: chain it here.
                audit.record_rows(
                    session, Encounter.__tablename__, {message.encounter_id: "update"}
                )
        elif (
            outcome == "failed"
            and message.kind in ALERT_KINDS
            # The domain decides what an alert nobody will receive means for its encounter.
            and alert_failed(session, message.encounter_id, result.at)
        ):
            # Wake the deliverer, whose next round escalates first.
            after_commit(session, wake)
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
