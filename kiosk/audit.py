"""Append-only audit entries, each hashed with the key over the one before it; verify().

The first entry of a chain carries the audit key's fingerprint, so that verifying with
another key says so instead of looking like tampering. Signed checkpoints, kept in a file
outside the database, remember how far the chain reached: a chain cut short (its newest
entries, or all of them, deleted) no longer verifies once a checkpoint has seen it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kiosk.models import AuditEntry, AuditHead
from kiosk.protocol.events import canonical_json

GENESIS = "0" * 64
FINGERPRINT_LABEL = b"kiosk audit key fingerprint v1"


def key_fingerprint(key: str) -> str:
    """16 hex digits that tell keys apart without revealing them (an HMAC of a fixed label)."""
    return hmac.new(key.encode(), FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


def entry_hash(
    key: str,
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: str,
    fingerprint: str | None = None,
) -> str:
    """The entry's HMAC; a first entry's key fingerprint is covered too, when it has one
    (entries made before fingerprints hash exactly as they did)."""
    fields: list[Any] = [prev_hash, seq, at.isoformat(), actor, action, subject, details]
    if fingerprint is not None:
        fields.append(fingerprint)
    material = canonical_json(fields).encode()
    return hmac.new(key.encode(), material, hashlib.sha256).hexdigest()


HEAD_ID = 1


def _locked_head(connection: Connection) -> tuple[int, str]:
    """Lock the head row and return the newest entry's (seq, hash)."""
    head = AuditHead.__table__
    query = select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID).with_for_update()
    row = connection.execute(query).one_or_none()
    if row is None:
        # A database emptied by hand or by a test: start the head from the chain, once,
        # whoever gets here first.
        entries = AuditEntry.__table__
        last = connection.execute(
            select(entries.c.seq, entries.c.hash).order_by(entries.c.seq.desc()).limit(1)
        ).one_or_none()
        values = {
            "id": HEAD_ID,
            "seq": last.seq if last else 0,
            "hash": last.hash if last else GENESIS,
        }
        insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(insert(head).values(**values).on_conflict_do_nothing())
        row = connection.execute(query).one()
    return int(row.seq), str(row.hash)


def append(
    connection: Connection,
    key: str,
    now: datetime,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one entry on the caller's connection (its transaction); return its seq."""
    last_seq, prev = _locked_head(connection)
    seq = last_seq + 1
    fingerprint = key_fingerprint(key) if seq == 1 else None
    body = canonical_json(details or {})
    at = now.replace(microsecond=(now.microsecond // 1000) * 1000)
    actor, action, subject = actor[:200], action[:60], subject[:200]
    digest = entry_hash(key, prev, seq, at, actor, action, subject, body, fingerprint)
    connection.execute(
        AuditEntry.__table__.insert().values(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            details=body,
            prev_hash=prev,
            hash=digest,
            key_fingerprint=fingerprint,
        )
    )
    head = AuditHead.__table__
    connection.execute(head.update().where(head.c.id == HEAD_ID).values(seq=seq, hash=digest))
    return seq


def record(
    session: Session,
    key: str,
    now: datetime,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one entry inside the session's transaction; return its seq.

    Details must never hold names or free text."""
    # Pending changes to the record go first: their own entries come before this one.
    session.flush()
    return append(session.connection(), key, now, actor, action, subject, details)


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    # Set when the first entry names another key than the one verifying: not tampering.
    expected_fingerprint: str | None = None
    given_fingerprint: str | None = None
    # The hash of the last entry checked (GENESIS for an empty chain).
    head_hash: str = GENESIS
    # False for a chain begun before first entries carried the key's fingerprint.
    fingerprinted: bool = True
    # The seq the head row names (None when there is no head row).
    head_seq: int | None = None

    @property
    def wrong_key(self) -> bool:
        return self.expected_fingerprint is not None


def hash_of(entry: AuditEntry, key: str, prev: str, fingerprint: str | None) -> str:
    return entry_hash(
        key,
        prev,
        entry.seq,
        entry.at,
        entry.actor,
        entry.action,
        entry.subject,
        entry.details,
        fingerprint,
    )


def verify(session: Session, key: str) -> Verification:
    """Recompute the chain; report a wrong key first, else the first entry that does not match."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    fingerprinted = True
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        if entry.seq == 1:
            recorded = entry.key_fingerprint
            fingerprinted = recorded is not None
            given = key_fingerprint(key)
            if recorded is not None and not hmac.compare_digest(recorded, given):
                # Made with this key after all? Then the fingerprint itself was altered.
                altered = hmac.compare_digest(entry.hash, hash_of(entry, key, prev, given))
                if not altered:
                    return Verification(False, 0, 1, recorded, given, fingerprinted=True)
        good = (
            entry.seq == expected_seq
            and entry.prev_hash == prev
            and hmac.compare_digest(entry.hash, hash_of(entry, key, prev, entry.key_fingerprint))
            and (entry.seq == 1 or entry.key_fingerprint is None)
        )
        if not good:
            return Verification(
                False, checked, entry.seq, head_hash=prev, fingerprinted=fingerprinted
            )
        prev = entry.hash
        expected_seq += 1
        checked += 1
    head = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)
    ).one_or_none()
    return Verification(
        True,
        checked,
        head_hash=prev,
        fingerprinted=fingerprinted,
        head_seq=head.seq if head is not None else None,
    )


def chain_hashes(session: Session) -> dict[int, str]:
    """Each entry's stored hash by seq, to compare with checkpoints."""
    rows = session.execute(select(AuditEntry.seq, AuditEntry.hash))
    return {seq: head for seq, head in rows}


# --- checkpoints: the chain's head, signed, in a file outside the database --------------


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str


def checkpoint_signature(key: str, seq: int, head: str, at: str) -> str:
    material = canonical_json({"at": at, "hash": head, "seq": seq}).encode()
    return hmac.new(key.encode(), b"checkpoint:" + material, hashlib.sha256).hexdigest()


def write_checkpoint(path: Path, key: str, seq: int, head: str, now: datetime) -> Checkpoint:
    """Append one signed line {seq, hash, at, signature}; the file is created 0600."""
    at = now.replace(microsecond=0).isoformat()
    line = json.dumps(
        {
            "seq": seq,
            "hash": head,
            "at": at,
            "signature": checkpoint_signature(key, seq, head, at),
        },
        sort_keys=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return Checkpoint(seq, head, at)


@dataclass(frozen=True)
class CheckpointFile:
    """The file's signed checkpoints, and the line numbers of those that are not."""

    valid: list[Checkpoint]
    untrusted_lines: list[int]

    @property
    def latest(self) -> Checkpoint | None:
        """The checkpoint that saw the longest chain (the chain only grows)."""
        return max(reversed(self.valid), key=lambda point: point.seq, default=None)


def read_checkpoints(path: Path, key: str) -> CheckpointFile:
    """Read every line; one that does not parse or whose signature fails is not trusted."""
    valid: list[Checkpoint] = []
    untrusted: list[int] = []
    if not path.exists():
        return CheckpointFile(valid, untrusted)
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            seq, head, at = int(data["seq"]), str(data["hash"]), str(data["at"])
            signature = str(data["signature"])
        except (ValueError, KeyError, TypeError):
            untrusted.append(number)
            continue
        if seq < 0 or not hmac.compare_digest(signature, checkpoint_signature(key, seq, head, at)):
            untrusted.append(number)
            continue
        valid.append(Checkpoint(seq, head, at))
    return CheckpointFile(valid, untrusted)


def missing_since(checkpoint: Checkpoint, hashes: dict[int, str]) -> bool:
    """True when the chain no longer holds what the checkpoint saw: entries were removed."""
    if checkpoint.seq == 0:
        return False
    return hashes.get(checkpoint.seq) != checkpoint.hash


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
