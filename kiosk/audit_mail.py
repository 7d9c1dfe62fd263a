"""The daily checkpoint, emailed through the outbox so that a copy is kept off the server."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from kiosk.audit import Checkpoint, checkpoint_line
from kiosk.notify.outbox import enqueue

KIND = "audit_checkpoint"


def checkpoint_message(line: str, point: Checkpoint) -> tuple[str, str]:
    """The subject and body: the signed line, and what to do with it."""
    subject = f"Audit checkpoint: entry {point.seq} at {point.at}"
    body = (
        f"The audit chain was verified intact and its head was signed at {point.at}.\n"
        f"It then held {point.seq} entries.\n\n"
        "Keep this message with the district's records. To check the chain later, add the\n"
        "line below to the checkpoint file and run `flask --app app audit verify`:\n\n"
        f"{line}\n"
    )
    return subject, body


def queue_checkpoint(
    session: Session, recipients: Iterable[str], key: str, point: Checkpoint, now: datetime
) -> int:
    """Queue one email per recipient, in the caller's unit of work; return how many."""
    line = checkpoint_line(key, point)
    subject, body = checkpoint_message(line, point)
    queued = 0
    for recipient in recipients:
        enqueue(
            session,
            key=f"audit-checkpoint.{point.seq}.{point.at}.{recipient}",
            encounter_id=None,
            contact_id=None,
            channel="email",
            kind=KIND,
            level=0,
            sequence=0,
            recipient=recipient,
            subject=subject,
            body=body,
            payload={"kind": KIND, "seq": point.seq},
            now=now,
        )
        queued += 1
    return queued
