"""Log lines: tokens redacted from access logs (through a real gunicorn), JSON lines that
parse, and one actionable line per failed delivery with no content in it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from kiosk.logs import JsonFormatter, RedactFilter, redact
from tests.conftest import deliver, free_port, key_environment, stop_process, tap_at
from tests.conftest import outbox_rows as rows
from tests.notify.test_channels import SECRET, only_contacts

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
TOKEN = "Zq9tokenValue7"


@pytest.mark.parametrize(
    ("seen", "logged"),
    [
        (f"/ack/{TOKEN}", "/ack/[redacted]"),
        (f"/enroll/{TOKEN}", "/enroll/[redacted]"),
        (f"GET /ack/{TOKEN}?x=1 HTTP/1.1", "GET /ack/[redacted]?x=1 HTTP/1.1"),
        (f"/login?next=%2Fack%2F{TOKEN}", "/login?next=%2Fack%2F[redacted]"),
        (f"/login?next=/enroll/{TOKEN}&a=b", "/login?next=/enroll/[redacted]&a=b"),
        (f"token={TOKEN}&a=b", "token=[redacted]&a=b"),
        (f"/x?a=1&access_token={TOKEN}", "/x?a=1&access_token=[redacted]"),
        (f"http://kiosk.test/ACK/{TOKEN}/", "http://kiosk.test/ACK/[redacted]/"),
        (
            f"/login/oidc/callback?code={TOKEN}&state={TOKEN}&iss=http%3A%2F%2Fidp",
            "/login/oidc/callback?code=[redacted]&state=[redacted]&iss=http%3A%2F%2Fidp",
        ),
        ("/desk/agents", "/desk/agents"),
        ("/office/outbox?status=failed", "/office/outbox?status=failed"),
    ],
)
def test_redact_hides_tokens_in_paths_and_queries(seen: str, logged: str) -> None:
    assert redact(seen) == logged


def test_json_lines_parse_and_carry_structured_fields_and_tracebacks() -> None:
    record = logging.LogRecord("kiosk", logging.ERROR, __file__, 1, "Exception on %s", (), None)
    record.args = (f"/ack/{TOKEN} [GET]",)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    record.delivery = {"channel": "webhook", "outbox_id": 3}
    RedactFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "Exception on /ack/[redacted] [GET]"
    assert data["level"] == "ERROR" and data["logger"] == "kiosk"
    assert data["delivery"] == {"channel": "webhook", "outbox_id": 3}
    assert "ValueError: boom" in data["exception"]


def test_a_failed_delivery_logs_one_line_with_ids_and_the_error_but_no_content(
    app: Flask, district: Any, caplog: pytest.LogCaptureFixture
) -> None:
    address = f"http://127.0.0.1:{free_port()}/hooks/office?token={TOKEN}"
    [hook_id] = only_contacts(
        app,
        "Lincoln Elementary School",
        {"channel": "webhook", "address": address, "webhook_secret": SECRET},
    )
    tap_at(app)
    with caplog.at_level(logging.WARNING, logger="kiosk.notify.sending"):
        deliver(app)
    [row] = rows(app)
    [record] = [r for r in caplog.records if r.name == "kiosk.notify.sending"]
    assert record.delivery == {  # type: ignore[attr-defined]
        "channel": "webhook",
        "contact_id": hook_id,
        "outbox_id": row.id,
        "kind": "alert",
        "attempt": 1,
        "error_class": "ConnectionRefusedError",
        "error": row.last_error,
        "retry": True,
    }
    line = record.getMessage()
    assert f"contact={hook_id} outbox={row.id}" in line and "attempt=1" in line
    assert "ConnectionRefusedError" in line
    for secret in (TOKEN, address, row.body, row.subject, SECRET, "Lincoln"):
        assert secret not in line
    assert json.loads(JsonFormatter().format(record))["delivery"]["outbox_id"] == row.id


# --- through a real gunicorn -----------------------------------------------------------


def gunicorn_env(app: Flask, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env.update(
        {
            "KIOSK_DEMO": "1",
            "KIOSK_DELIVERY": "off",
            "KIOSK_DATABASE_URL": app.config["DATABASE_URL"],
            **key_environment(app),
            "KIOSK_INSTANCE_PATH": app.instance_path,
            "KIOSK_WORKERS": "1",
            "PORT": str(port),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Any]:
    """Start gunicorn with an environment; it is stopped (and its logs flushed) after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> str:
        log = tmp_path / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:app"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        url = f"http://127.0.0.1:{env['PORT']}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if fetch(f"{url}/livez") == 200:
                    return url
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        pytest.fail(f"gunicorn did not start:\n{log.read_text(errors='replace')}")

    yield start
    for process in started:
        stop_process(process)


TOKEN_URLS = (
    f"/ack/{TOKEN}",
    f"/enroll/{TOKEN}",
    f"/login?next=%2Fack%2F{TOKEN}",
    f"/readyz?token={TOKEN}",
)


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_gunicorn_access_log_never_shows_a_token(
    app: Flask, gunicorn: Any, tmp_path: Path, log_format: str
) -> None:
    access = tmp_path / "access.log"
    url = gunicorn(
        gunicorn_env(app, free_port(), KIOSK_ACCESS_LOG=str(access), KIOSK_LOG_FORMAT=log_format)
    )
    for path in TOKEN_URLS:
        fetch(url + path)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and access.read_text().count("\n") < 1 + len(TOKEN_URLS):
        time.sleep(0.05)
    lines = access.read_text().splitlines()
    assert len(lines) == 1 + len(TOKEN_URLS)  # /livez, then each of ours
    text = "\n".join(lines)
    assert TOKEN not in text
    assert "/ack/[redacted]" in text and "/enroll/[redacted]" in text
    assert "next=%2Fack%2F[redacted]" in text and "token=[redacted]" in text
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        assert [r["access"]["path"] for r in records[1:3]] == [
            "/ack/[redacted]",
            "/enroll/[redacted]",
        ]
        assert {r["logger"] for r in records} == {"gunicorn.access"}
    else:
        assert '"GET /ack/[redacted] HTTP/1.1"' in text


@pytest.mark.slow
def test_json_log_format_makes_every_server_line_json_with_tokens_redacted(
    app: Flask, gunicorn: Any, tmp_path: Path
) -> None:
    """The app's own lines too: with its database gone, a request fails and Flask logs it."""
    broken = f"sqlite:///{tmp_path}/missing/folder/kiosk.db"
    env = gunicorn_env(app, free_port(), KIOSK_LOG_FORMAT="json", KIOSK_DATABASE_URL=broken)
    url = gunicorn(env)
    assert fetch(f"{url}/readyz") == 503
    assert fetch(f"{url}/enroll/{TOKEN}") == 500
    log = tmp_path / "server.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "Exception on" not in log.read_text():
        time.sleep(0.05)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"gunicorn.error", "kiosk"} <= {r["logger"] for r in records}
    [failed] = [r for r in records if r["message"].startswith("Exception on")]
    assert failed["message"] == "Exception on /enroll/[redacted] [GET]"
    assert "Traceback" in failed["exception"] and failed["level"] == "ERROR"
    assert any(r["message"].startswith("health: the database cannot be read (") for r in records)
    assert TOKEN not in log.read_text()
