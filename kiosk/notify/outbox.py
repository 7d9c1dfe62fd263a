"""The one way to send anything to a person: enqueue() an outbox row in the caller's transaction."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.db import after_commit
from kiosk.models import OutboxMessage

# Set after a commit that added rows, so a waiting deliverer starts at once.
wake_event = threading.Event()


def wake() -> None:
    wake_event.set()


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
) -> OutboxMessage:
    """Add one fully rendered message; a second call with the same key returns the first row."""
    existing = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    if existing is not None:
        return existing
    message = OutboxMessage(
        encounter_id=encounter_id,
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
    session.add(message)
    session.flush()
    after_commit(session, wake)
    return message
