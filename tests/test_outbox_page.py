"""The outbox page: who sees which rows, "Retry now", CSRF, and access by role."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.auth.passwords import hash_password
from kiosk.clock import now_utc
from kiosk.db import writing
from kiosk.models import AuditEntry, Contact, OutboxMessage, RoleGrant, School, User
from kiosk.notify.outbox import wake_event
from kiosk.webdb import database
from tests.conftest import (
    CHEAP_COST,
    SmtpSink,
    csrf_token,
    deliver,
    enroll_client,
    free_port,
    smtp_settings,
    tap_start,
)
from tests.conftest import (
    outbox_rows as rows,
)
from tests.test_office import login

DANA = "dana.reyes@demo-district.example"  # designee, Lincoln Elementary School
JORDAN = "jordan.kim@demo-district.example"  # designee, Riverside Middle School
ADMIN = "admin@demo-district.example"


def tap_both_schools(app: Flask) -> None:
    for school in ("Lincoln Elementary School", "Riverside Middle School"):
        client, _ = enroll_client(app, school)
        assert tap_start(client).status_code == 302


def retry_path(row: OutboxMessage) -> str:
    return f"/office/outbox/{row.id}/retry"


def post_retry(client: FlaskClient, row: OutboxMessage) -> Any:
    token = csrf_token(client, "/office/outbox")
    return client.post(retry_path(row), data={"csrf_token": token})


def fail_everything(app: Flask) -> None:
    """Deliver with no SMTP server listening, long enough that the rows give up."""
    deliver(app)
    later = max(r.created_at for r in rows(app)) + timedelta(seconds=61)
    deliver(app, now=later, give_up_after=60.0)
    assert {r.status for r in rows(app)} == {"failed"}


def test_designee_sees_only_rows_of_their_school(make_app: Any, district: Any) -> None:
    app = make_app()
    tap_both_schools(app)
    page = login(app, DANA).get("/office/outbox").get_data(as_text=True)
    assert DANA in page and JORDAN not in page
    assert "Lincoln Elementary School" in page and "Riverside Middle School" not in page
    everything = login(app, ADMIN).get("/office/outbox").get_data(as_text=True)
    assert DANA in everything and JORDAN in everything


def test_designee_cannot_retry_another_schools_row(make_app: Any, district: Any) -> None:
    app = make_app(**smtp_settings(port=free_port()))
    tap_both_schools(app)
    fail_everything(app)
    riverside = next(r for r in rows(app) if r.recipient == JORDAN)
    response = post_retry(login(app, DANA), riverside)
    assert response.status_code == 404
    assert next(r for r in rows(app) if r.id == riverside.id).status == "failed"


def test_retry_now_resets_a_failed_row_and_it_is_delivered(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(port=free_port()))
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    fail_everything(app)
    [row] = rows(app)
    office = login(app, ADMIN)
    page = office.get("/office/outbox?status=failed").get_data(as_text=True)
    assert "Retry now</button>" in page and "ConnectionRefusedError" in page

    wake_event.clear()
    before = now_utc()
    response = post_retry(office, row)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/office/outbox")
    assert wake_event.is_set()  # the deliverer starts at once
    [row] = rows(app)
    assert row.status == "pending" and row.failed_at is None
    assert before <= row.next_attempt_at <= now_utc()
    with database(app).session_factory() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry is not None and entry.action == "outbox.retry"
        assert entry.subject == f"outbox:{row.id}"

    app.config.update(smtp_settings(smtp_server))  # the server is back
    assert deliver(app) == 1
    [row] = rows(app)
    assert row.status == "sent"
    assert smtp_server.message_ids() == [f"<{row.idempotency_key}@district.test>"]
    page = office.get("/office/outbox").get_data(as_text=True)
    assert "Retry now</button>" not in page


def test_retry_needs_a_csrf_token(make_app: Any, district: Any) -> None:
    app = make_app(**smtp_settings(port=free_port()))
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    fail_everything(app)
    [row] = rows(app)
    office = login(app, ADMIN)
    assert office.post(retry_path(row)).status_code == 400
    assert office.post(retry_path(row), data={"csrf_token": "forged"}).status_code == 400
    assert rows(app)[0].status == "failed"


def test_status_filter_and_sent_rows_offer_no_retry(make_app: Any, district: Any) -> None:
    app = make_app()  # demo mail log: everything is "sent"
    tap_both_schools(app)
    deliver(app)
    office = login(app, ADMIN)
    failed = office.get("/office/outbox?status=failed").get_data(as_text=True)
    assert "No messages with status" in failed
    sent = office.get("/office/outbox?status=sent").get_data(as_text=True)
    assert sent.count('data-status="sent"') == 2 and "Retry now</button>" not in sent
    # An unknown status shows everything rather than an error.
    assert office.get("/office/outbox?status=bogus").status_code == 200


def test_webhook_addresses_are_shown_without_their_path(make_app: Any, district: Any) -> None:
    app = make_app()
    with writing(), database(app).session_factory() as session, session.begin():
        school = session.scalar(select(School).where(School.name == "Lincoln Elementary School"))
        assert school is not None
        session.add(
            Contact(
                school_id=school.id,
                name="Chat",
                channel="webhook",
                address="https://hooks.chat.example/services/T000/B000/SECRETTOKEN",
                webhook_secret="s",
            )
        )
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    page = login(app, ADMIN).get("/office/outbox").get_data(as_text=True)
    assert "https://hooks.chat.example/…" in page and "SECRETTOKEN" not in page


def test_reviewer_gets_403_and_anonymous_is_sent_to_login(app: Flask, district: Any) -> None:
    with writing(), database(app).session_factory() as session, session.begin():
        user = User(
            display_name="Rae Viewer",
            email="reviewer@demo-district.example",
            password_hash=hash_password("demo-password", CHEAP_COST),
        )
        session.add(user)
        session.flush()
        session.add(RoleGrant(user_id=user.id, role="reviewer", school_id=None))
    reviewer = login(app, "reviewer@demo-district.example")
    assert reviewer.get("/office/outbox").status_code == 403
    token = csrf_token(reviewer, "/office/")
    assert reviewer.post("/office/outbox/1/retry", data={"csrf_token": token}).status_code == 403

    anonymous = app.test_client()
    response = anonymous.get("/office/outbox")
    assert response.status_code == 302
    assert re.search(r"/login\?next=.*office/outbox", response.headers["Location"])


def test_outbox_page_has_no_inline_script_or_style(make_app: Any, district: Any) -> None:
    app = make_app()
    tap_both_schools(app)
    response = login(app, ADMIN).get("/office/outbox")
    body = response.get_data(as_text=True).lower()
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "<style" not in body and " style=" not in body and "<script>" not in body
