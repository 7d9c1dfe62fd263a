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

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from kiosk.models import AuditEntry
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
    fingerprint = key_fingerprint(key) if seq == 1 else None
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
        hash=entry_hash(
            key, prev, seq, at, actor[:200], action[:60], subject[:200], body, fingerprint
        ),
        key_fingerprint=fingerprint,
    )
    session.add(entry)
    session.flush()
    return entry


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
    return Verification(True, checked, head_hash=prev, fingerprinted=fingerprinted)


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
