"""Webhooks and SMS through real HTTP servers on loopback: retries, timeouts, signatures, shapes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from flask import Flask
from sqlalchemy import select, update

from kiosk.clock import now_utc
from kiosk.db import writing
from kiosk.models import Contact, School
from kiosk.notify import formats, messages, webhook
from kiosk.notify.channels import retry_after_seconds
from kiosk.notify.messages import AlertFacts
from kiosk.webdb import database
from tests.conftest import deliver, enroll_client, tap_at, tap_start, the_encounter
from tests.conftest import outbox_rows as rows
from tests.test_desk_flow import walk_all_steps

SECRET = "whsec-test-0123456789"
SID, TOKEN, SMS_FROM = "AC0123456789", "sms-auth-token", "+15550100100"
# What the desk records in walk_all_steps: none of it may leave in any message.
SENSITIVE = ("Maria Example", "Maria", "Alvarez", "welfare check", "4471", "Homeland")


@dataclass
class Step:
    """One scripted answer of the receiver."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b'{"ok": true}'


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server on loopback that answers from a script and keeps every request."""

    def __init__(self) -> None:
        self.script: list[Step] = []
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.busy = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name the server library calls
                with receiver.lock:
                    receiver.busy += 1
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length)
                    with receiver.lock:
                        receiver.requests.append(Received(self.path, dict(self.headers), body))
                        step = receiver.script.pop(0) if receiver.script else Step()
                    if step.delay:
                        time.sleep(step.delay)
                    try:
                        self.send_response(step.status)
                        for name, value in step.headers.items():
                            self.send_header(name, value)
                        self.send_header("Content-Length", str(len(step.body)))
                        self.end_headers()
                        self.wfile.write(step.body)
                    except OSError:
                        pass  # the client gave up waiting (the timeout test)
                finally:
                    with receiver.lock:
                        receiver.busy -= 1

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, *steps: Step) -> None:
        with self.lock:
            self.script.extend(steps)

    def close(self) -> None:
        deadline = time.monotonic() + 5
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.02)
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.close()


def only_contacts(app: Flask, school_name: str, *contacts: dict[str, Any]) -> list[int]:
    """Make these the school's only active contacts (level 1 unless said otherwise)."""
    with writing(), database(app).session_factory() as session, session.begin():
        school = session.scalar(select(School).where(School.name == school_name))
        assert school is not None
        session.execute(update(Contact).where(Contact.school_id == school.id).values(active=False))
        ids = []
        for values in contacts:
            contact = Contact(school_id=school.id, name="Office contact", **values)
            session.add(contact)
            session.flush()
            ids.append(contact.id)
        return ids


def hook(receiver: Receiver, fmt: str = "generic", secret: str | None = SECRET) -> dict[str, Any]:
    return {
        "channel": "webhook",
        "address": f"{receiver.base}/hooks/{fmt}?token=abc",
        "webhook_format": fmt,
        "webhook_secret": secret,
    }


def receiver_verifies(secret: str, request: Received, now: float) -> bool:
    """What a receiver does (the README example): recompute and compare, check the age."""
    timestamp = request.headers["X-Kiosk-Timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    fresh = abs(now - int(timestamp)) <= 300
    return fresh and hmac.compare_digest("sha256=" + expected, request.headers["X-Kiosk-Signature"])


# --- webhooks ---------------------------------------------------------------------------


def test_webhook_500_then_200_retries_with_the_same_id_and_body_signed(
    app: Flask, district: Any, receiver: Receiver
) -> None:
    only_contacts(app, "Lincoln Elementary School", hook(receiver))
    tap_at(app)
    receiver.answer(Step(500), Step(200))
    assert deliver(app) == 0
    [row] = rows(app)
    assert row.status == "pending" and row.attempts == 1
    assert "HTTP 500" in (row.last_error or "")
    assert deliver(app, now=row.next_attempt_at) == 1
    [row] = rows(app)
    assert row.status == "sent" and row.attempts == 2 and row.delivered_via == "webhook"

    first, second = receiver.requests
    assert first.path == second.path == "/hooks/generic?token=abc"
    assert first.headers["X-Kiosk-Delivery"] == second.headers["X-Kiosk-Delivery"]
    assert first.headers["X-Kiosk-Delivery"] == row.idempotency_key
    assert first.body == second.body  # a retry never sends a different message
    assert first.headers["Content-Type"].startswith("application/json")
    for request in (first, second):
        assert receiver_verifies(SECRET, request, time.time())
        assert webhook.verify(SECRET, request.headers, request.body, time.time())
        assert not receiver_verifies("another-secret", request, time.time())
        assert not webhook.verify(SECRET, request.headers, request.body + b" ", time.time())
        assert not webhook.verify(SECRET, request.headers, request.body, time.time() + 3600)
    assert json.loads(first.body)["delivery_id"] == row.idempotency_key


def test_webhook_429_honours_retry_after_seconds(
    app: Flask, district: Any, receiver: Receiver
) -> None:
    only_contacts(app, "Lincoln Elementary School", hook(receiver))
    tap_at(app)
    receiver.answer(Step(429, {"Retry-After": "2"}), Step(200))
    at = now_utc()
    assert deliver(app, now=at) == 0
    [row] = rows(app)
    assert row.status == "pending"
    assert "HTTP 429" in (row.last_error or "")
    # Backoff alone would be at most a second after the first try; the receiver asked for 2.
    assert row.next_attempt_at - at == timedelta(seconds=2)
    assert deliver(app, now=at + timedelta(seconds=1.9)) == 0
    assert len(receiver.requests) == 1
    assert deliver(app, now=at + timedelta(seconds=2)) == 1
    assert len(receiver.requests) == 2


def test_webhook_retry_after_is_capped_by_the_backoff_cap(
    app: Flask, district: Any, receiver: Receiver
) -> None:
    only_contacts(app, "Lincoln Elementary School", hook(receiver))
    tap_at(app)
    receiver.answer(Step(503, {"Retry-After": "3600"}))
    at = now_utc()
    deliver(app, now=at, backoff_cap=30.0)
    [row] = rows(app)
    assert row.status == "pending"
    assert row.next_attempt_at - at == timedelta(seconds=30)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = now_utc().replace(microsecond=0)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=12), usegmt=True), now) == (
        12.0
    )
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_slow_webhook_times_out_on_read_and_is_retried(
    make_app: Any, district: Any, receiver: Receiver
) -> None:
    app = make_app(HTTP_READ_TIMEOUT=0.5, HTTP_CONNECT_TIMEOUT=0.5)
    only_contacts(app, "Lincoln Elementary School", hook(receiver))
    tap_at(app)
    receiver.answer(Step(200, delay=1.2), Step(200))
    started = time.perf_counter()
    assert deliver(app) == 0
    assert time.perf_counter() - started < 1.1  # gave up at the read timeout, not the reply
    [row] = rows(app)
    assert row.status == "pending"
    assert "read timeout after 0.5 s" in (row.last_error or "")
    assert deliver(app, now=row.next_attempt_at) == 1
    assert [r.headers["X-Kiosk-Delivery"] for r in receiver.requests] == [row.idempotency_key] * 2


def test_webhook_400_fails_at_once_and_is_not_retried(
    app: Flask, district: Any, receiver: Receiver
) -> None:
    only_contacts(app, "Lincoln Elementary School", hook(receiver))
    tap_at(app)
    receiver.answer(Step(400, body=b'{"error": "bad"}'))
    at = now_utc()
    assert deliver(app, now=at) == 0
    [row] = rows(app)
    assert row.status == "failed" and row.failed_at == at
    assert "HTTP 400" in (row.last_error or "")
    assert deliver(app, now=at + timedelta(minutes=5)) == 0
    assert len(receiver.requests) == 1
    # The alert reached nobody: its escalation is due now.
    assert the_encounter(app).next_escalation_at == at


def test_webhook_contact_without_secret_fails_with_a_clear_error(
    app: Flask, district: Any, receiver: Receiver
) -> None:
    only_contacts(app, "Lincoln Elementary School", hook(receiver, secret=None))
    tap_at(app)
    assert deliver(app) == 0
    [row] = rows(app)
    assert row.status == "failed"
    assert "no signing secret" in (row.last_error or "")
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("ftp://example.test/x", "not an http(s) URL"),
        ("http://127.0.0.1:99999/x", "invalid port"),
        ("http://127.0.0.1:9/x\r\nX-Injected: 1", "control characters"),
    ],
)
def test_webhook_address_that_cannot_work_fails_at_once(
    app: Flask, district: Any, address: str, error: str
) -> None:
    only_contacts(
        app,
        "Lincoln Elementary School",
        {"channel": "webhook", "address": address, "webhook_secret": SECRET},
    )
    tap_at(app)
    deliver(app)
    [row] = rows(app)
    assert row.status == "failed" and error in (row.last_error or "")


def test_webhook_connection_refused_is_retried(app: Flask, district: Any) -> None:
    from tests.conftest import free_port

    only_contacts(
        app,
        "Lincoln Elementary School",
        {
            "channel": "webhook",
            "address": f"http://127.0.0.1:{free_port()}/hook",
            "webhook_secret": SECRET,
        },
    )
    tap_at(app)
    deliver(app)
    [row] = rows(app)
    assert row.status == "pending" and "ConnectionRefusedError" in (row.last_error or "")


def test_generic_slack_and_teams_shapes_carry_no_student_data(
    app: Flask, district: Any, receiver: Receiver
) -> None:
    only_contacts(
        app,
        "Lincoln Elementary School",
        hook(receiver, "generic"),
        hook(receiver, "slack"),
        hook(receiver, "teams"),
    )
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    walk_all_steps(client)  # records agent and student names, a purpose, a badge number
    assert deliver(app) == 6  # the alert and the follow-up, to each of the three
    encounter = the_encounter(app)
    record = f"http://kiosk.test/office/encounters/{encounter.public_id}"
    by_path: dict[str, list[dict[str, Any]]] = {}
    for request in receiver.requests:
        text = request.body.decode("utf-8")
        for secret in SENSITIVE:
            assert secret not in text
        assert receiver_verifies(SECRET, request, time.time())
        by_path.setdefault(request.path.split("?")[0], []).append(json.loads(text))

    alert, followup = by_path["/hooks/generic"]
    keys = {row.idempotency_key for row in rows(app)}
    assert set(alert) == {
        "delivery_id",
        "kind",
        "level",
        "title",
        "school",
        "local_time",
        "channel",
        "place",
        "link",
        "ack_link",
        "reference",
    }
    assert alert["delivery_id"] in keys
    assert (alert["kind"], alert["level"], alert["channel"]) == ("alert", 1, "in_person")
    assert alert["school"] == "Lincoln Elementary School"
    assert alert["link"] == record and alert["reference"] == encounter.public_id
    assert alert["ack_link"].startswith("http://kiosk.test/ack/")
    assert alert["local_time"] in alert["title"]
    assert followup["kind"] == "followup" and followup["ack_link"] is None

    slack_alert, _ = by_path["/hooks/slack"]
    assert list(slack_alert) == ["text"]
    assert "Lincoln Elementary School" in slack_alert["text"]
    assert "|Acknowledge>" in slack_alert["text"] and f"<{record}|" in slack_alert["text"]

    teams_alert, _ = by_path["/hooks/teams"]
    assert teams_alert["@type"] == "MessageCard"
    assert "Lincoln Elementary School" in teams_alert["title"]
    assert "Lincoln Elementary School" in teams_alert["text"]
    targets = [a["targets"][0]["uri"] for a in teams_alert["potentialAction"]]
    assert targets[0].startswith("http://kiosk.test/ack/") and targets[1] == record


def test_slack_text_escapes_control_characters() -> None:
    facts = AlertFacts(
        school="A & B <School>",
        local_time="Monday 2 March 2026, 10:02:03 EST",
        channel="phone",
        link="http://kiosk.test/office/encounters/x",
        reference="x",
    )
    rendered = messages.stand_down(facts)
    text = formats.slack(rendered, facts)["text"]
    assert "A &amp; B &lt;School&gt;" in text and "<School>" not in text


# --- SMS --------------------------------------------------------------------------------


def sms_app(make_app: Any, receiver: Receiver, **extra: Any) -> Flask:
    return make_app(
        SMS_BASE_URL=receiver.base,
        SMS_ACCOUNT_SID=SID,
        SMS_AUTH_TOKEN=TOKEN,
        SMS_FROM=SMS_FROM,
        **extra,
    )


def sms_contact(number: str = "+15550123456") -> dict[str, Any]:
    return {"channel": "sms", "address": number}


CREATED = Step(201, {"Content-Type": "application/json"}, body=b'{"sid": "SM1"}')


def test_sms_goes_to_the_gateway_with_basic_auth_and_a_short_body(
    make_app: Any, district: Any, receiver: Receiver
) -> None:
    app = sms_app(make_app, receiver)
    only_contacts(app, "Riverside Middle School", sms_contact())
    client, _ = enroll_client(app, "Riverside Middle School")
    tap_start(client)
    walk_all_steps(client)
    receiver.answer(CREATED, CREATED)
    assert deliver(app) == 2  # the alert and the follow-up
    alert, followup = receiver.requests
    assert alert.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    scheme, _, credentials = alert.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"{SID}:{TOKEN}"
    assert alert.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(alert.body.decode(), strict_parsing=True).items()}
    assert set(form) == {"To", "From", "Body"}
    assert form["To"] == "+15550123456" and form["From"] == SMS_FROM
    body = form["Body"]
    assert len(body) <= formats.SMS_MAX_CHARS
    assert body.startswith("Front-office alert: Riverside Middle School")
    assert "Acknowledge: http://kiosk.test/ack/" in body
    ack = body.split("Acknowledge: ")[1]
    assert " " not in ack  # the link is whole, at the end
    update_body = parse_qs(followup.body.decode())["Body"][0]
    assert "Record: http://kiosk.test/office/encounters/" in update_body
    for request in receiver.requests:
        text = parse_qs(request.body.decode())["Body"][0]
        for secret in SENSITIVE:
            assert secret not in text
    assert {row.status for row in rows(app)} == {"sent"}


def test_sms_gateway_5xx_is_retried_and_4xx_fails(
    make_app: Any, district: Any, receiver: Receiver
) -> None:
    app = sms_app(make_app, receiver)
    only_contacts(app, "Lincoln Elementary School", sms_contact(), sms_contact("+15550999999"))
    tap_at(app)
    rejected = Step(400, body=b'{"code": 21211, "message": "Invalid To number +15550999999"}')
    receiver.answer(Step(502), rejected)
    assert deliver(app) == 0
    first, second = rows(app)
    assert first.status == "pending" and "HTTP 502" in (first.last_error or "")
    assert second.status == "failed"
    assert second.last_error == "the SMS gateway answered HTTP 400 (code 21211)"
    receiver.answer(CREATED)
    assert deliver(app, now=first.next_attempt_at) == 1
    first, second = rows(app)
    assert first.status == "sent" and second.status == "failed"
    assert len(receiver.requests) == 3


def test_sms_without_a_gateway_fails_and_escalates(app: Flask, district: Any) -> None:
    only_contacts(app, "Lincoln Elementary School", sms_contact())
    tap_at(app)
    at = now_utc()
    deliver(app, now=at)
    [row] = rows(app)
    assert row.status == "failed" and "no sender is configured for sms" in (row.last_error or "")
    assert the_encounter(app).next_escalation_at == at


def test_sms_text_keeps_the_link_whole_and_fits() -> None:
    link = "http://kiosk.test/ack/" + "x" * 120
    facts = AlertFacts(
        school="The Very Long Name Of A School " * 10,
        local_time="Wednesday 30 September 2026, 10:02:03 CDT",
        channel="in_person",
        link="http://kiosk.test/office/encounters/abc",
        reference="abc",
        ack_link=link,
    )
    for kind in formats.KIND_WORDS:
        text = formats.sms_text(kind, 2, facts)
        assert len(text) <= formats.SMS_MAX_CHARS
        assert text.endswith(f"Acknowledge: {link}")
