"""Append-only audit entries, each hashed with the key over the one before it; verify()."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from kiosk.models import AuditEntry
from kiosk.protocol.events import canonical_json

GENESIS = "0" * 64


def entry_hash(
    key: str,
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: str,
) -> str:
    material = canonical_json(
        [prev_hash, seq, at.isoformat(), actor, action, subject, details]
    ).encode()
    return hmac.new(key.encode(), material, hashlib.sha256).hexdigest()


def record(
    session: Session,
    key: str,
    now: datetime,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. Details must never hold names or free text."""
    if session.get_bind().dialect.name == "postgresql":
        # One writer at a time appends to the chain.
        session.execute(text("SELECT pg_advisory_xact_lock(727274)"))
    last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    seq = (last.seq + 1) if last else 1
    prev = last.hash if last else GENESIS
    body = canonical_json(details or {})
    at = now.replace(microsecond=(now.microsecond // 1000) * 1000)
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor[:200],
        action=action[:60],
        subject=subject[:200],
        details=body,
        prev_hash=prev,
        hash=entry_hash(key, prev, seq, at, actor[:200], action[:60], subject[:200], body),
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None


def verify(session: Session, key: str) -> Verification:
    """Recompute the chain; report the first entry that does not match."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        good = (
            entry.seq == expected_seq
            and entry.prev_hash == prev
            and hmac.compare_digest(
                entry.hash,
                entry_hash(
                    key,
                    prev,
                    entry.seq,
                    entry.at,
                    entry.actor,
                    entry.action,
                    entry.subject,
                    entry.details,
                ),
            )
        )
        if not good:
            return Verification(False, checked, entry.seq)
        prev = entry.hash
        expected_seq += 1
        checked += 1
    return Verification(True, checked)


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
