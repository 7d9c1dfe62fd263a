"""The alert by email, through a real SMTP server on loopback."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from kiosk.clock import now_utc
from kiosk.delivery import hooks_for
from kiosk.notify.deliverer import Deliverer
from kiosk.notify.outbox import wake_event
from kiosk.notify.sending import Policy
from kiosk.webdb import database
from tests.conftest import (
    SmtpSink,
    csrf_token,
    deliver,
    enroll_client,
    free_port,
    smtp_settings,
    tap_start,
)
from tests.conftest import (
    outbox_rows as outbox,
)
from tests.conftest import (
    the_encounter as only_encounter,
)
from tests.test_desk_flow import walk_all_steps


def test_alert_arrives_with_school_local_time_and_no_student_data(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    client, _ = enroll_client(app, "Riverside Middle School")
    tap_start(client)
    assert deliver(app) == 1
    [message] = smtp_server.messages
    assert message["To"] == "jordan.kim@demo-district.example"
    assert "Riverside Middle School" in message["Subject"]
    encounter = only_encounter(app)
    # Riverside is in America/Chicago: the local clock time, with its zone, is in the mail.
    local = encounter.started_at.astimezone(ZoneInfo("America/Chicago"))
    body = message.get_payload()
    assert local.strftime("%H:%M:%S") in body
    assert local.strftime("%Z") in body
    assert "in person" in body
    assert f"http://kiosk.test/office/encounters/{encounter.public_id}" in body
    assert message["Message-ID"] == f"<{outbox(app)[0].idempotency_key}@district.test>"
    # The desk now sees that the office was notified.
    assert client.get("/desk/status.json").get_json()["alert"]["state"] == "notified"


def test_followup_after_document_step_carries_categories_only(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    walk_all_steps(client)  # records "R. Alvarez", "Maria Example", a purpose, an I-205
    deliver(app)
    subjects = [m["Subject"] for m in smtp_server.messages]
    assert len(smtp_server.messages) == 2, subjects
    followup = smtp_server.messages[1]
    assert followup["Subject"].startswith("Update:")
    body = followup.get_payload()
    assert "student information or records" in body
    assert "access to a student" in body
    assert "Administrative warrant" in body or "administrative warrant" in body.lower()
    assert "Emergency declared by the agent: not recorded" in body
    for raw in smtp_server.raw:
        text = raw.decode()
        for secret in ("Maria Example", "Maria", "welfare check", "Alvarez", "4471"):
            assert secret not in text
    # Saving the document step again sends no second follow-up.
    token = csrf_token(client, "/desk/document")
    client.post("/desk/document", data={"csrf_token": token, "shown": "no"})
    deliver(app)
    assert len(smtp_server.messages) == 2


def test_smtp_down_at_tap_then_up_delivers_exactly_once(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    down_port = free_port()  # nothing listens here: connection refused
    app = make_app(**smtp_settings(port=down_port))
    client, _ = enroll_client(app, "Lincoln Elementary School")
    response = tap_start(client)
    assert response.status_code == 302
    # The tap never waits for mail: nothing was tried while it ran.
    [row] = outbox(app)
    assert row.status == "pending" and row.attempts == 0
    assert deliver(app) == 0
    [row] = outbox(app)
    assert row.status == "pending" and row.attempts == 1
    assert "ConnectionRefusedError" in (row.last_error or "")
    key = row.idempotency_key

    # The server comes back (same address as configured from now on).
    app.config.update(smtp_settings(smtp_server))
    assert deliver(app, now=row.next_attempt_at) == 1
    assert deliver(app, now=row.next_attempt_at) == 0
    assert smtp_server.message_ids() == [f"<{key}@district.test>"]
    [row] = outbox(app)
    assert row.status == "sent" and row.attempts == 2


def test_delivery_that_keeps_failing_is_marked_failed_and_visible(
    make_app: Any, district: Any
) -> None:
    app = make_app(**smtp_settings(port=free_port()), UNDELIVERED_AFTER_SECONDS=0)
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    policy = {"give_up_after": 60.0, "backoff_cap": 30.0}
    deliver(app, **policy)
    [row] = outbox(app)
    later = row.created_at + timedelta(seconds=61)
    deliver(app, now=later, **policy)
    [row] = outbox(app)
    assert row.status == "failed"
    assert row.failed_at is not None
    status = client.get("/desk/status.json").get_json()
    assert status["alert"]["state"] == "undelivered"
    assert "call the office" in status["alert"]["text"]


def test_smtp_permanent_rejection_fails_without_retry(make_app: Any, district: Any) -> None:
    from aiosmtpd.controller import Controller

    class Refuse:
        async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802 - the name the server library calls
            return "550 5.1.1 No such mailbox"

    port = free_port()
    controller = Controller(Refuse(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        app = make_app(**smtp_settings(port=port))
        client, _ = enroll_client(app, "Lincoln Elementary School")
        tap_start(client)
        assert deliver(app) == 0
    finally:
        controller.stop()
    [row] = outbox(app)
    assert row.status == "failed"
    assert "550" in (row.last_error or "")


def test_stand_down_is_delivered_to_everyone_alerted(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    client, _ = enroll_client(app, "Lincoln Elementary School")
    tap_start(client)
    deliver(app)
    token = csrf_token(client, "/desk/")
    client.post("/desk/mistake", data={"csrf_token": token})
    deliver(app)
    assert [m["Subject"].split(":")[0] for m in smtp_server.messages] == [
        "Front-office alert",
        "Stand down",
    ]
    assert smtp_server.messages[1]["To"] == smtp_server.messages[0]["To"]
    assert "started by mistake" in smtp_server.messages[1].get_payload()


def test_running_deliverer_sends_right_after_commit(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    """The in-process deliverer is woken by the commit; it does not wait for its poll."""
    from kiosk.notify.channels import senders_from_settings

    app = make_app(**smtp_settings(smtp_server))
    client, _ = enroll_client(app, "Lincoln Elementary School")
    deliverer = Deliverer(
        database(app).session_factory,
        senders_from_settings(app.config),
        policy=Policy(),
        poll_seconds=30.0,
        hooks=hooks_for(app),  # far longer than the test waits: only the wake-up can deliver
    )
    deliverer.start()
    try:
        time.sleep(0.2)
        wake_event.clear()
        tap_start(client)
        # Far sooner than the 30-second poll: the wake-up delivered it (a bound, not a speed).
        assert smtp_server.received.wait(5.0)
    finally:
        deliverer.stop()
    assert deliverer.heartbeat is not None and deliverer.heartbeat <= now_utc()
    assert len(smtp_server.messages) == 1


def test_rows_are_leased_to_the_local_deliverer_and_survive_its_death(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    """A tap leases its alert to this process's deliverer; if that deliverer never sends
    (the process died), the lease runs out and any other deliverer sends it, once."""
    from kiosk.notify import outbox as outbox_module

    app = make_app(**smtp_settings(smtp_server))
    client, _ = enroll_client(app, "Lincoln Elementary School")
    dead = outbox_module.LocalHandoff("dead-worker", 60)
    outbox_module.register_local(dead)
    try:
        tap_start(client)
    finally:
        outbox_module.unregister_local(dead)
    [row] = outbox(app)
    assert (row.status, row.lease_owner, row.attempts) == ("sending", "dead-worker", 1)
    assert [r.id for r in [row]] == dead.drain()  # handed over after the commit
    assert deliver(app) == 0  # still leased: nobody else touches it
    assert deliver(app, now=row.lease_until + timedelta(seconds=1)) == 1
    assert smtp_server.message_ids() == [f"<{row.idempotency_key}@district.test>"]
    [row] = outbox(app)
    assert row.status == "sent"


def test_a_rolled_back_tap_hands_nothing_over(make_app: Any, district: Any) -> None:
    from kiosk.db import writing
    from kiosk.models import Kiosk
    from kiosk.notify import outbox as outbox_module
    from kiosk.notify.links import Links
    from kiosk.protocol.encounters import start_encounter

    app = make_app()
    enroll_client(app, "Lincoln Elementary School")
    handoff = outbox_module.LocalHandoff("this-worker", 60)
    outbox_module.register_local(handoff)
    try:
        with writing(), database(app).session_factory() as session:
            kiosk = session.scalars(select(Kiosk)).one()
            start_encounter(
                session, kiosk, "in_person", "n1", now_utc(), Links.from_settings(app.config)
            )
            session.rollback()
            session.commit()
    finally:
        outbox_module.unregister_local(handoff)
    assert handoff.drain() == []
    assert outbox(app) == []


def test_writers_queue_on_the_writer_lock_and_never_fail(make_app: Any, district: Any) -> None:
    """Many kiosks tapping at once on SQLite: every tap commits, none waits out a timeout."""
    import threading

    app = make_app()
    schools = ["Lincoln Elementary School", "Riverside Middle School"]
    clients = [enroll_client(app, schools[i % 2])[0] for i in range(12)]
    pages = [client.get("/desk/").get_data(as_text=True) for client in clients]
    from tests.conftest import start_fields

    statuses: list[int] = []
    lock = threading.Lock()

    def tap(client: Any, page: str) -> None:
        response = client.post("/desk/start", data={**start_fields(page), "channel": "phone"})
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=tap, args=pair) for pair in zip(clients, pages, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [302] * 12
    assert len(outbox(app)) == 12
