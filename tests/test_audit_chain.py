"""`audit verify` and `audit checkpoint` as an operator runs them: a wrong key is not
tampering, an altered row is, and entries deleted from the end are noticed once a signed
checkpoint outside the database has seen them."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import Result
from flask import Flask
from sqlalchemy import delete, select, update

from kiosk import audit
from kiosk.clock import now_utc
from kiosk.db import writing
from kiosk.models import AuditEntry, AuditHead
from kiosk.protocol.events import canonical_json
from kiosk.webdb import database
from tests.conftest import tamper


def append(app: Flask, count: int) -> None:
    """Append entries as the app does: one unit of work each."""
    for _ in range(count):
        with writing(), database(app).session_factory() as session, session.begin():
            audit.record(
                session,
                app.config["AUDIT_KEY"],
                now_utc(),
                actor="cli",
                action="school.update",
                subject="school:1",
                details={"field": "timezone"},
            )


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["audit", *args])


def checkpoint_file(app: Flask) -> Path:
    return Path(app.config["AUDIT_CHECKPOINT_FILE"])


def change(app: Flask, statement: Any) -> None:
    tamper(app, statement)


def test_an_intact_chain_with_checkpoints_verifies(app: Flask) -> None:
    result = run(app, "checkpoint")
    assert result.exit_code == 0, result.output
    append(app, 3)
    assert run(app, "checkpoint").exit_code == 0
    append(app, 2)
    result = run(app, "verify")
    assert result.exit_code == 0, result.output
    fingerprint = audit.key_fingerprint("test-audit-key")
    assert f"Record intact: 5 entries, key {fingerprint}, last checkpoint seq 3 at " in (
        result.output
    )
    lines = [json.loads(line) for line in checkpoint_file(app).read_text().splitlines()]
    assert [line["seq"] for line in lines] == [0, 3]
    assert set(lines[1]) == {"seq", "hash", "at", "signature"}
    assert oct(checkpoint_file(app).stat().st_mode & 0o777) == "0o600"


def test_a_wrong_key_is_named_as_such_not_as_tampering(app: Flask, make_app: Any) -> None:
    append(app, 3)
    other = make_app(AUDIT_KEY="another-audit-key")
    result = run(other, "verify")
    assert result.exit_code == 3
    assert "wrong audit key" in result.output and "broken" not in result.output
    expected = audit.key_fingerprint("test-audit-key")
    given = audit.key_fingerprint("another-audit-key")
    assert f"fingerprint {expected} expected, this key is {given}" in result.output
    assert "test-audit-key" not in result.output and "another-audit-key" not in result.output
    # A checkpoint is never signed with the wrong key.
    assert run(other, "checkpoint").exit_code == 3
    assert not checkpoint_file(other).exists()
    assert run(app, "verify").exit_code == 0


def test_an_altered_row_is_broken_at_that_entry(app: Flask) -> None:
    append(app, 4)
    change(app, update(AuditEntry).where(AuditEntry.seq == 3).values(actor="user:someone"))
    result = run(app, "verify")
    assert result.exit_code == 1
    assert "audit chain broken at entry 3 (2 entries before it verified)" in result.output
    assert "wrong audit key" not in result.output
    # Nor is a broken chain checkpointed.
    assert run(app, "checkpoint").exit_code == 1
    assert not checkpoint_file(app).exists()


def test_deleting_the_newest_entries_after_a_checkpoint_is_detected(app: Flask) -> None:
    append(app, 5)
    assert run(app, "checkpoint").exit_code == 0
    change(app, delete(AuditEntry).where(AuditEntry.seq > 3))
    result = run(app, "verify")
    assert result.exit_code == 4
    assert "the chain ends at entry 3 but a checkpoint of " in result.output
    assert "saw entry 5: entries were removed" in result.output


def test_deleting_every_entry_after_a_checkpoint_is_detected(app: Flask) -> None:
    append(app, 2)
    assert run(app, "checkpoint").exit_code == 0
    change(app, delete(AuditEntry))
    result = run(app, "verify")
    assert result.exit_code == 4
    assert "the chain ends at entry 0" in result.output
    assert "saw entry 2: entries were removed" in result.output


def rewind_head(app: Flask, seq: int) -> None:
    """Point the head row back at entry seq, as someone cutting the chain would."""
    with database(app).session_factory() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.seq == seq)).one()
    tamper(app, update(AuditHead).values(seq=seq, hash=entry.hash))


def test_deleting_the_newest_entries_is_detected_by_the_head_row(app: Flask) -> None:
    append(app, 5)
    change(app, delete(AuditEntry).where(AuditEntry.seq > 3))
    result = run(app, "verify")
    assert result.exit_code == 4
    assert "the chain ends at entry 3 but its head row names entry 5" in result.output


def test_entries_replaced_after_a_checkpoint_are_detected(app: Flask) -> None:
    append(app, 4)
    assert run(app, "checkpoint").exit_code == 0
    change(app, delete(AuditEntry).where(AuditEntry.seq > 2))
    rewind_head(app, 2)
    append(app, 3)
    result = run(app, "verify")
    assert result.exit_code == 4
    assert "entry 4 is not the one a checkpoint of" in result.output


def test_a_forged_checkpoint_is_reported_and_not_trusted(app: Flask) -> None:
    append(app, 2)
    assert run(app, "checkpoint").exit_code == 0
    forged = {"seq": 40, "hash": "f" * 64, "at": "2026-12-01T00:00:00+00:00"}
    forged["signature"] = "0" * 64
    with checkpoint_file(app).open("a") as handle:
        handle.write(json.dumps(forged) + "\n")
    result = run(app, "verify")
    assert result.exit_code == 5
    assert "line 2: the checkpoint's signature does not match the audit key" in result.output
    assert "not trusted" in result.output
    assert "entries were removed" not in result.output
    assert "Record intact: 2 entries" in result.output
    assert "last checkpoint seq 2 at" in result.output


def test_a_chain_begun_before_fingerprints_still_verifies(app: Flask) -> None:
    key = app.config["AUDIT_KEY"]
    at = now_utc().replace(microsecond=0) - timedelta(days=30)
    body = canonical_json({})
    with writing(), database(app).session_factory() as session, session.begin():
        session.add(
            AuditEntry(
                seq=1,
                at=at,
                actor="cli",
                action="school.create",
                subject="school:1",
                details=body,
                prev_hash=audit.GENESIS,
                hash=audit.entry_hash(
                    key, audit.GENESIS, 1, at, "cli", "school.create", "school:1", body
                ),
            )
        )
    # As the migration that added the head row left it.
    rewind_head(app, 1)
    append(app, 2)
    result = run(app, "verify")
    assert result.exit_code == 0, result.output
    assert "Record intact: 3 entries" in result.output
    assert "predates key fingerprints" in result.output


def test_an_altered_key_fingerprint_is_tampering_not_a_wrong_key(app: Flask) -> None:
    append(app, 2)
    other = audit.key_fingerprint("another-audit-key")
    change(app, update(AuditEntry).where(AuditEntry.seq == 1).values(key_fingerprint=other))
    result = run(app, "verify")
    assert result.exit_code == 1
    assert "audit chain broken at entry 1" in result.output
    assert "wrong audit key" not in result.output
    change(app, update(AuditEntry).where(AuditEntry.seq == 1).values(key_fingerprint=None))
    assert "audit chain broken at entry 1" in run(app, "verify").output


def test_no_checkpoint_is_signed_over_a_file_the_key_does_not_match(
    app: Flask, make_app: Any
) -> None:
    assert run(app, "checkpoint").exit_code == 0
    other = make_app(AUDIT_KEY="another-audit-key")
    result = run(other, "checkpoint")
    assert result.exit_code == 5
    assert "check the audit key first" in result.output
    assert len(checkpoint_file(app).read_text().splitlines()) == 1


def test_two_writers_appending_at_once_leave_no_gap_and_no_duplicate(app: Flask) -> None:
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            start.wait(timeout=30)
            append(app, 10)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    with database(app).session_factory() as session:
        seqs = list(session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
        head = session.scalars(select(AuditHead)).one()
    assert seqs == list(range(1, 21))
    assert head.seq == 20
    result = run(app, "verify")
    assert result.exit_code == 0, result.output
    assert "Record intact: 20 entries" in result.output
