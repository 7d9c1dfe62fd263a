"""The one way to send anything to a person: enqueue() an outbox row in the caller's transaction."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.db import HANDOFF_KEY, after_commit
from kiosk.models import OutboxMessage

# The kinds of row that alert someone to an encounter (as opposed to the follow-up or a
# stand-down): the ones the domain escalates on when they fail, and /healthz watches.
ALERT_KINDS = ("alert", "escalation", "realert", "exigency")
# Set after a commit that added rows, so a waiting deliverer starts at once.
wake_event = threading.Event()
# A row handed to this process's deliverer at enqueue is leased for this long: long enough
# for the deliverer to start its send (which extends the lease for the send itself), short
# enough that if the process dies right after the tap another deliverer sends the alert
# within seconds.
HANDOFF_LEASE_SECONDS = 10.0


def wake() -> None:
    wake_event.set()


class LocalHandoff:
    """Rows leased to this process's deliverer at enqueue, passed to it after the commit."""

    def __init__(self, owner: str, lease_seconds: float = HANDOFF_LEASE_SECONDS) -> None:
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._ids: list[int] = []
        self._lock = threading.Lock()

    def push(self, ids: list[int]) -> None:
        with self._lock:
            self._ids.extend(ids)
        wake_event.set()

    def drain(self) -> list[int]:
        with self._lock:
            ids, self._ids = self._ids, []
        return ids

    def pending(self) -> bool:
        with self._lock:
            return bool(self._ids)


_local: LocalHandoff | None = None


def register_local(handoff: LocalHandoff) -> None:
    """Lease new rows to the deliverer running in this process (gunicorn workers)."""
    global _local
    _local = handoff


def unregister_local(handoff: LocalHandoff) -> None:
    global _local
    if _local is handoff:
        _local = None


def _hand_over(session: Session, row: OutboxMessage, now: datetime) -> None:
    """Lease the row to this process's deliverer now; give it the row once committed.

    The lease is short (HANDOFF_LEASE_SECONDS): the deliverer extends it when the send
    starts, and if the process dies before that, any deliverer takes the row seconds later.
    """
    local = _local
    if local is None:
        after_commit(session, wake)
        return
    row.status = "sending"
    row.lease_owner = local.owner
    row.lease_until = now + timedelta(seconds=local.lease_seconds)
    row.attempts = 1
    ids = session.info.get(HANDOFF_KEY)
    if ids is None:
        ids = session.info[HANDOFF_KEY] = []

        def push() -> None:
            handed = session.info.pop(HANDOFF_KEY, None) or []
            local.push([message.id for message in handed])

        after_commit(session, push)
    ids.append(row)


def idempotency_key(
    encounter_public_id: str,
    contact_id: int | None,
    channel: str,
    kind: str,
    level: int,
    sequence: int,
) -> str:
    """Build the deterministic key that is also the Message-ID and the webhook delivery id."""
    return f"{encounter_public_id}.{contact_id or 0}.{channel}.{kind}.{level}.{sequence}"


def enqueue(
    session: Session,
    *,
    key: str,
    encounter_id: int | None,
    contact_id: int | None,
    channel: str,
    kind: str,
    level: int,
    sequence: int,
    recipient: str,
    subject: str,
    body: str,
    payload: dict[str, Any],
    now: datetime,
    new_encounter: bool = False,
    test_alert_id: int | None = None,
) -> OutboxMessage:
    """Add one fully rendered message; a second call with the same key returns the first row.

    new_encounter: the encounter was created in this transaction, so no row can have the
    key yet (the unique constraint still guards it); the look-up is skipped.
    """
    if not new_encounter:
        existing = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
        if existing is not None:
            return existing
    message = OutboxMessage(
        encounter_id=encounter_id,
        test_alert_id=test_alert_id,
        contact_id=contact_id,
        channel=channel,
        kind=kind,
        level=level,
        sequence=sequence,
        idempotency_key=key,
        recipient=recipient,
        subject=subject,
        body=body,
        payload=json.dumps(payload, sort_keys=True),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    _hand_over(session, message, now)
    session.add(message)
    session.flush()
    return message
