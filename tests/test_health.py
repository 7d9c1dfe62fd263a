"""/livez, /readyz and /healthz with real servers: a webhook contact whose server refuses or
never answers, while a real SMTP server receives the email alerts."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kiosk import clock
from kiosk.clock import now_utc
from kiosk.notify.leases import record_heartbeat
from kiosk.webdb import database
from tests.conftest import deliver, free_port, running_smtp, smtp_settings, tap_at
from tests.conftest import outbox_rows as rows
from tests.notify.test_channels import SECRET, only_contacts
from tests.test_office import login

ADMIN = "admin@demo-district.example"
DANA = "dana.reyes@demo-district.example"
FAR_AWAY = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def restore_clock() -> Iterator[None]:
    yield
    clock.set_offset(0)


@contextlib.contextmanager
def dead_webhook(kind: str) -> Iterator[str]:
    """A webhook address whose server refuses connections, or accepts and never answers."""
    if kind == "refuses":
        yield f"http://127.0.0.1:{free_port()}/hooks/office?token=hook-secret-token"
        return
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # connections wait in the backlog; nobody ever reads them
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/office?token=hook-secret-token"


def get(client: FlaskClient, path: str) -> tuple[int, dict[str, Any]]:
    response = client.get(path)
    return response.status_code, response.get_json()


def far_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base.update(FAR_AWAY)
    return client


def beat(app: Flask) -> None:
    """A deliverer finished a round just now (the running one records this every 5 s)."""
    record_heartbeat(database(app).session_factory, "deliverer-a", now_utc())


@pytest.mark.parametrize("kind", ["refuses", "times out"])
def test_a_dead_webhook_contact_is_its_problem_and_the_app_stays_ready(
    make_app: Any, district: Any, restore_clock: None, kind: str
) -> None:
    with running_smtp() as smtp, dead_webhook(kind) as address:
        app = make_app(
            **smtp_settings(smtp),
            DELIVERY_STALL_SECONDS=60,
            HTTP_CONNECT_TIMEOUT=0.5,
            HTTP_READ_TIMEOUT=0.5,
        )
        _, hook_id = only_contacts(
            app,
            "Lincoln Elementary School",
            {"channel": "email", "address": DANA},
            {"channel": "webhook", "address": address, "webhook_secret": SECRET},
        )
        tap_at(app)
        beat(app)
        assert deliver(app) == 1  # the email; the webhook is tried and fails
        assert len(smtp.message_ids()) == 1

        clock.set_offset(90)  # a minute and a half later, the webhook still fails
        beat(app)
        hook = next(r for r in rows(app) if r.channel == "webhook")
        assert deliver(app, now=max(hook.next_attempt_at, now_utc())) == 0
        hook = next(r for r in rows(app) if r.channel == "webhook")
        assert hook.status == "pending" and hook.attempts == 2

        assert get(app.test_client(), "/livez") == (200, {"status": "ok"})
        assert get(far_client(app), "/readyz") == (
            200,
            {"status": "ok", "database": "ok", "delivery": "ok"},
        )
        # An anonymous caller from elsewhere learns the status and nothing more.
        assert get(far_client(app), "/healthz") == (200, {"status": "ok"})

        staff = login(app, ADMIN)
        staff.environ_base.update(FAR_AWAY)
        status, body = get(staff, "/healthz")
        assert status == 200 and body["status"] == "ok" and body["no_deliverer"] is False
        assert body["channels"]["email"]["stalled"] is False
        assert body["channels"]["email"]["waiting"] == 0
        webhook = body["channels"]["webhook"]
        assert webhook["stalled"] is False and webhook["waiting_alerts"] == 1
        assert webhook["problem_contacts"] == [hook_id]
        [problem] = body["contact_problems"]
        assert problem["contact_id"] == hook_id and problem["channel"] == "webhook"
        assert problem["waiting"] == 1 and problem["oldest_age_s"] >= 89
        expected = "ConnectionRefusedError" if kind == "refuses" else "read timeout after 0.5 s"
        assert expected in problem["last_error"]
        assert "hook-secret-token" not in staff.get("/healthz").get_data(as_text=True)

        page = staff.get("/office/outbox").get_data(as_text=True)
        assert 'id="contact-problems"' in page and f'data-contact="{hook_id}"' in page
        assert "1 contact not receiving messages" in page and expected in page
        assert "hook-secret-token" not in page


def test_email_waiting_too_long_makes_readyz_503(
    make_app: Any, district: Any, restore_clock: None
) -> None:
    app = make_app(**smtp_settings(port=free_port()), DELIVERY_STALL_SECONDS=60)  # SMTP down
    tap_at(app)
    beat(app)
    deliver(app)
    assert get(far_client(app), "/readyz")[0] == 200  # waiting, not yet too long

    clock.set_offset(61)
    beat(app)  # the deliverer is alive; the mail server is what fails
    assert get(far_client(app), "/readyz") == (
        503,
        {"status": "stalled", "database": "ok", "delivery": "stalled"},
    )
    assert get(far_client(app), "/healthz") == (503, {"status": "stalled"})
    status, body = get(app.test_client(), "/healthz")  # from this machine: the details
    assert status == 503 and body["no_deliverer"] is False
    email = body["channels"]["email"]
    assert email["stalled"] is True and email["sender"] is True and email["waiting_alerts"] == 1
    assert [p["channel"] for p in body["contact_problems"]] == ["email"]
    assert "Connection" in body["contact_problems"][0]["last_error"]


def test_a_webhook_alert_with_no_deliverer_running_is_stalled(
    make_app: Any, district: Any, restore_clock: None
) -> None:
    app = make_app(DELIVERY_STALL_SECONDS=60)
    only_contacts(
        app,
        "Lincoln Elementary School",
        {
            "channel": "webhook",
            "address": f"http://127.0.0.1:{free_port()}/h",
            "webhook_secret": "s",
        },
    )
    tap_at(app)
    clock.set_offset(61)  # nobody delivers at all
    assert get(far_client(app), "/readyz")[0] == 503
    status, body = get(app.test_client(), "/healthz")
    assert status == 503 and body["no_deliverer"] is True
    assert body["channels"]["webhook"]["stalled"] is False


def test_signed_in_staff_without_outbox_access_and_anonymous_see_no_counts(
    make_app: Any, district: Any
) -> None:
    app = make_app()
    tap_at(app)
    assert set(get(far_client(app), "/healthz")[1]) == {"status"}
    assert get(app.test_client(), "/healthz")[1]["outbox_pending"] == 1  # loopback
    forwarded = far_client(app)
    # A forwarded header does not make a remote caller local.
    response = forwarded.get("/healthz", headers={"X-Forwarded-For": "127.0.0.1"})
    assert set(response.get_json()) == {"status"}
    designee = login(app, DANA)
    designee.environ_base.update(FAR_AWAY)
    assert get(designee, "/healthz")[1]["outbox_pending"] == 1


def test_behind_a_trusted_proxy_the_client_address_decides(make_app: Any, district: Any) -> None:
    app = make_app(PROXY_HOPS=1)
    tap_at(app)
    # nginx on this machine forwards a remote client: no details for it.
    remote = app.test_client().get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
    assert set(remote.get_json()) == {"status"}
    local = app.test_client().get("/healthz", headers={"X-Forwarded-For": "127.0.0.1"})
    assert local.get_json()["outbox_pending"] == 1


def test_livez_answers_without_a_database_and_readyz_says_error(
    make_app: Any, tmp_path: Any
) -> None:
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path}/missing/folder/kiosk.db")
    assert get(far_client(app), "/livez") == (200, {"status": "ok"})
    assert get(far_client(app), "/readyz") == (503, {"status": "error", "database": "error"})
    assert get(app.test_client(), "/healthz") == (503, {"status": "error", "database": "error"})
