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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, Table, Text, event, func, select, type_coerce
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, object_session

from kiosk.clock import now_utc
from kiosk.models import (
    Acknowledgement,
    Agent,
    AuditEntry,
    AuditHead,
    AuditVerification,
    Base,
    DeskMessage,
    Document,
    Encounter,
    EncounterEvent,
    LateAddition,
    NamedPerson,
    RoleGrant,
    SealedText,
)
from kiosk.protocol.events import canonical_json

if TYPE_CHECKING:
    from flask import Flask

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


# --- the record: every change to these tables appends an entry ------------------------

# The rows of the record whose every insert, update and delete is chained, by table. Who
# made the change is in the row itself (events) or in its own entry (admin changes); these
# entries name the command line when it wrote the rows, else "record".
COVERED_MODELS: tuple[type[Any], ...] = (
    Encounter,
    EncounterEvent,
    Agent,
    Document,
    NamedPerson,
    Acknowledgement,
    DeskMessage,
    LateAddition,
    RoleGrant,
)
COVERED_TABLES = tuple(model.__tablename__ for model in COVERED_MODELS)
# Session.info keys: the audit key (set on the app's session factory, see configure), and
# the rows written since the last flush.
KEY_INFO = "audit_key"
PENDING_INFO = "audit_pending_rows"
RECORD_ACTOR = "record"


class AuditKeyMissing(RuntimeError):
    """A row of the record was written by a session that cannot append to the chain."""


def configure(factory: Any, key: str) -> None:
    """Give a sessionmaker the audit key: its sessions chain every change to the record."""
    info = dict(factory.kw.get("info") or {})
    info[KEY_INFO] = key
    factory.configure(info=info)


def init_app(app: Flask) -> None:
    """Give every session of the app's database the audit key."""
    from kiosk import webdb

    configure(webdb.database(app).session_factory, app.config["AUDIT_KEY"])


# Columns left out of a row's digest: the encounter's event counter and its next escalation
# time, which plain UPDATEs rewrite many times an encounter (events.record_event numbers each
# event; escalation brings the next step forward). The events and escalations they count
# and schedule are chained rows of their own.
UNDIGESTED: dict[str, frozenset[str]] = {
    "encounters": frozenset({"event_count", "next_escalation_at"}),
}


def content_query(table: Table) -> Select[Any]:
    """Every column of a covered table as stored (sealed columns as their ciphertext), but
    those UNDIGESTED."""
    skipped = UNDIGESTED.get(table.name, frozenset())
    columns = [
        type_coerce(column, Text()).label(column.name)
        if isinstance(column.type, SealedText)
        else column
        for column in table.columns
        if column.name not in skipped
    ]
    return select(*columns).order_by(table.c.id)


def row_ids(table_name: str) -> Select[Any]:
    """Every row id of a covered table, in order."""
    table = Base.metadata.tables[table_name]
    return select(table.c.id).order_by(table.c.id)


def row_digest(row: Any) -> str:
    """SHA-256 over a row's canonical content (column name -> stored value)."""
    values = {
        name: value.isoformat() if isinstance(value, datetime | date) else value
        for name, value in row._mapping.items()
    }
    return hashlib.sha256(canonical_json(values).encode()).hexdigest()


def record_rows(
    session: Session, table_name: str, changes: dict[int, str], actor: str | None = None
) -> None:
    """Append one entry per row changed (row id -> "insert", "update" or "delete"), each
    naming the table, the row and the digest of its content now (None once deleted)."""
    key = session.info.get(KEY_INFO)
    if key is None:
        raise AuditKeyMissing(
            f"a row of {table_name} was written by a session without the audit key"
        )
    who = actor or RECORD_ACTOR
    connection = session.connection()
    table = Base.metadata.tables[table_name]
    kept = [row_id for row_id, change in changes.items() if change != "delete"]
    digests = {
        row.id: row_digest(row)
        for row in connection.execute(content_query(table).where(table.c.id.in_(kept)))
    }
    now = now_utc()
    for row_id in sorted(changes):
        change = changes[row_id]
        digest = digests.get(row_id)
        append(
            connection,
            key,
            now,
            who,
            f"record.{change}",
            f"{table_name}:{row_id}",
            {"table": table_name, "row": row_id, "digest": digest},
        )


def _pending(target: Any) -> dict[tuple[str, int], str] | None:
    session = object_session(target)
    if session is None:
        return None
    pending: dict[tuple[str, int], str] = session.info.setdefault(PENDING_INFO, {})
    return pending


def _on_insert(_mapper: Any, _connection: Any, target: Any) -> None:
    pending = _pending(target)
    if pending is not None:
        pending[(target.__tablename__, target.id)] = "insert"


def _on_update(_mapper: Any, _connection: Any, target: Any) -> None:
    pending = _pending(target)
    if pending is not None:
        pending.setdefault((target.__tablename__, target.id), "update")


def _on_delete(_mapper: Any, _connection: Any, target: Any) -> None:
    pending = _pending(target)
    if pending is not None:
        pending[(target.__tablename__, target.id)] = "delete"


for _model in COVERED_MODELS:
    event.listen(_model, "after_insert", _on_insert)
    event.listen(_model, "after_update", _on_update)
    event.listen(_model, "after_delete", _on_delete)


@event.listens_for(Session, "after_flush")
def _chain_the_flushed_rows(session: Session, _context: Any) -> None:
    """Each row of the record written by this flush gets its entry, in the same transaction."""
    pending: dict[tuple[str, int], str] = session.info.pop(PENDING_INFO, {})
    by_table: dict[str, dict[int, str]] = {}
    for (table_name, row_id), change in pending.items():
        by_table.setdefault(table_name, {})[row_id] = change
    for table_name in sorted(by_table):
        record_rows(session, table_name, by_table[table_name])


@event.listens_for(Session, "after_rollback")
def _forget_flushed_rows(session: Session) -> None:
    session.info.pop(PENDING_INFO, None)


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
    # Each covered table's rows: row id -> latest entry's seq and digest (see verify).
    latest: dict[str, dict[int, bytes]] = field(default_factory=dict, repr=False)

    @property
    def wrong_key(self) -> bool:
        return self.expected_fingerprint is not None


def hash_of(entry: Any, key: str, prev: str, fingerprint: str | None) -> str:
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


RECORD_PREFIX = "record."
# In the map verify() builds: an entry's seq (8 bytes) then the row's digest (32 bytes),
# or 32 zero bytes once the chain says the row was deleted.
DELETED = bytes(32)


def verify(session: Session, key: str) -> Verification:
    """Recompute the chain; report a wrong key first, else the first entry that does not match.

    Streams the entries; keeps of each row of the record only its latest entry's seq and
    digest, for check_rows()."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    fingerprinted = True
    latest: dict[str, dict[int, bytes]] = {name: {} for name in COVERED_TABLES}
    entries = AuditEntry.__table__
    rows = session.execute(
        select(entries).order_by(entries.c.seq), execution_options={"yield_per": 5000}
    )
    try:
        for entry in rows:
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
                and hmac.compare_digest(
                    entry.hash, hash_of(entry, key, prev, entry.key_fingerprint)
                )
                and (entry.seq == 1 or entry.key_fingerprint is None)
            )
            if not good:
                return Verification(
                    False, checked, entry.seq, head_hash=prev, fingerprinted=fingerprinted
                )
            if entry.action.startswith(RECORD_PREFIX):
                _remember(latest, entry.seq, entry.details)
            prev = entry.hash
            expected_seq += 1
            checked += 1
    finally:
        # A server-side cursor on PostgreSQL: closed even when a bad entry ends the loop.
        rows.close()
    head = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)
    ).one_or_none()
    return Verification(
        True,
        checked,
        head_hash=prev,
        fingerprinted=fingerprinted,
        head_seq=head.seq if head is not None else None,
        latest=latest,
    )


def _remember(latest: dict[str, dict[int, bytes]], seq: int, details: str) -> None:
    data = json.loads(details)
    rows = latest.get(data.get("table"))
    if rows is None:
        return
    digest = data.get("digest")
    rows[int(data["row"])] = seq.to_bytes(8, "big") + (bytes.fromhex(digest) if digest else DELETED)


@dataclass(frozen=True)
class RowProblem:
    """A row of the record that does not match its latest entry, or has none."""

    table: str
    row: int
    # The latest entry for the row (None: the row has no entry at all).
    seq: int | None
    kind: str  # "changed", "no entry", "deleted", "back after deletion"

    def sentence(self) -> str:
        where = f"{self.table} row {self.row}"
        if self.kind == "no entry":
            return f"{where} has no entry in the chain: it was written outside the app"
        if self.kind == "deleted":
            return f"{where} is gone, but entry {self.seq} recorded it: it was deleted"
        if self.kind == "back after deletion":
            return f"{where} exists, but entry {self.seq} recorded its deletion"
        return f"{where} differs from entry {self.seq}: it was changed without an entry"


def check_rows(session: Session, result: Verification) -> RowProblem | None:
    """Recompute each covered row's digest and compare it with its latest entry; return the
    problem whose entry comes first in the chain (rows with no entry at all come last).

    Uses up result.latest."""
    problems: list[RowProblem] = []
    for table_name in COVERED_TABLES:
        # Consumed as the rows are seen: what is left had rows that are gone.
        expected = result.latest.get(table_name, {})
        table = Base.metadata.tables[table_name]
        with session.execute(content_query(table), execution_options={"yield_per": 5000}) as rows:
            found = list(_compare(table_name, rows, expected))
        problems.extend(found)
        for row_id, known in expected.items():
            if known[8:] != DELETED:
                seq = int.from_bytes(known[:8], "big")
                problems.append(RowProblem(table_name, row_id, seq, "deleted"))
    if not problems:
        return None
    return min(problems, key=lambda p: (p.seq is None, p.seq or 0, p.table, p.row))


def _compare(table_name: str, rows: Any, expected: dict[int, bytes]) -> Iterator[RowProblem]:
    """The rows that do not match their latest entry; those seen leave `expected`."""
    for row in rows:
        known = expected.pop(row.id, None)
        if known is None:
            yield RowProblem(table_name, row.id, None, "no entry")
            continue
        seq, digest = int.from_bytes(known[:8], "big"), known[8:]
        if digest == DELETED:
            yield RowProblem(table_name, row.id, seq, "back after deletion")
        elif not hmac.compare_digest(digest, bytes.fromhex(row_digest(row))):
            yield RowProblem(table_name, row.id, seq, "changed")


def hash_at(session: Session, seq: int) -> str | None:
    """The stored hash of entry seq, to compare with a checkpoint (None: no such entry)."""
    return session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == seq))


# --- checkpoints: the chain's head, signed, in a file outside the database --------------


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str


def checkpoint_signature(key: str, seq: int, head: str, at: str) -> str:
    material = canonical_json({"at": at, "hash": head, "seq": seq}).encode()
    return hmac.new(key.encode(), b"checkpoint:" + material, hashlib.sha256).hexdigest()


def checkpoint_line(key: str, point: Checkpoint) -> str:
    """The checkpoint as one signed JSON line {seq, hash, at, signature}."""
    return json.dumps(
        {
            "seq": point.seq,
            "hash": point.hash,
            "at": point.at,
            "signature": checkpoint_signature(key, point.seq, point.hash, point.at),
        },
        sort_keys=True,
    )


def write_checkpoint(path: Path, key: str, seq: int, head: str, now: datetime) -> Checkpoint:
    """Append one signed line {seq, hash, at, signature}; the file is created 0600."""
    at = now.replace(microsecond=0).isoformat()
    line = checkpoint_line(key, Checkpoint(seq, head, at))
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return Checkpoint(seq, head, at)


def last_verification(session: Session) -> AuditVerification | None:
    """The newest run of `audit verify` or `audit checkpoint`."""
    return session.scalar(
        select(AuditVerification)
        .order_by(AuditVerification.at.desc(), AuditVerification.id.desc())
        .limit(1)
    )


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


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
