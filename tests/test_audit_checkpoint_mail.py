"""The daily checkpoint is emailed, and the review log says when the record was last
verified and what was found."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import update

from kiosk import audit
from kiosk.models import AuditEntry
from tests.conftest import deliver, running_smtp, smtp_settings, tamper
from tests.test_policy import create_user, login


def test_the_checkpoint_is_emailed_to_each_recipient_with_its_signed_line(
    make_app: Any,
) -> None:
    with running_smtp() as sink:
        app = make_app(
            **smtp_settings(sink),
            AUDIT_CHECKPOINT_EMAILS=("records@district.test", "counsel@district.test"),
        )
        create_user(app, "reviewer@district.test", "reviewer")
        result = app.test_cli_runner().invoke(args=["audit", "checkpoint"])
        assert result.exit_code == 0, result.output
        assert "checkpoint emailed to 2 recipient(s)" in result.output
        assert deliver(app) == 2
        assert sink.received.wait(5)
    assert sorted(str(m["To"]) for m in sink.messages) == [
        "counsel@district.test",
        "records@district.test",
    ]
    message = sink.messages[0]
    assert str(message["Subject"]).startswith("Audit checkpoint: entry ")
    body = message.get_payload(decode=True).decode()
    line = next(text for text in body.splitlines() if text.startswith("{"))
    written = audit.read_checkpoints(audit_file(app), app.config["AUDIT_KEY"])
    assert written.latest is not None
    assert json.loads(line)["seq"] == written.latest.seq
    assert line == audit_file(app).read_text().splitlines()[-1]


def audit_file(app: Flask) -> Path:
    return Path(app.config["AUDIT_CHECKPOINT_FILE"])


def verified_line(page: str) -> str:
    match = re.search(r'<p class="hint" id="record-verified">([^<]*)</p>', page)
    assert match, "no verification line on the page"
    return match.group(1).strip()


def test_the_review_log_shows_when_the_record_was_last_verified(app: Flask, make_app: Any) -> None:
    create_user(app, "reviewer@district.test", "reviewer")
    client = login(app, "reviewer@district.test")
    assert verified_line(client.get("/review/").get_data(as_text=True)) == (
        "Record last verified: never."
    )
    runner = app.test_cli_runner()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    line = verified_line(client.get("/review/").get_data(as_text=True))
    assert re.fullmatch(r"Record last verified \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: intact\.", line)
    other_key = make_app(AUDIT_KEY="another-audit-key")
    assert other_key.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 3
    line = verified_line(client.get("/review/").get_data(as_text=True))
    assert line.endswith(": not checked (wrong audit key).")
    tamper(app, update(AuditEntry).where(AuditEntry.seq == 1).values(actor="user:someone"))
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 1
    line = verified_line(client.get("/review/").get_data(as_text=True))
    assert line.endswith(": NOT intact (entry 1).")
