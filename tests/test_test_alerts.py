"""Test alerts: sent like a real alert through a real SMTP server, acknowledged through the
emailed link, reported to the administration, and never seen as a record."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from kiosk.clock import now_utc
from kiosk.db import unit_of_work
from kiosk.models import AuditEntry, Contact, Encounter, OutboxMessage, School, TestAlert
from kiosk.notify import formats, messages
from kiosk.notify.links import Links
from kiosk.protocol import setup
from kiosk.protocol.test_alerts import send_test_alert
from kiosk.webdb import database
from tests.conftest import SmtpSink, csrf_token, deliver, enroll_client, smtp_settings
from tests.test_policy import LINCOLN, create_user, login

ACK_LINE = "Acknowledge (opens a page where you confirm):"
DESIGNEE = "dana.reyes@demo-district.example"


def subject_of(message: Message) -> str:
    return str(make_header(decode_header(str(message["Subject"]))))


def body_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


def ack_link(message: Message) -> str:
    lines = [line.strip() for line in body_of(message).splitlines()]
    return lines[lines.index(ACK_LINE) + 1]


def admin(app: Flask) -> FlaskClient:
    return login(app, "admin@demo-district.example", "demo-password")


def send_from_page(app: Flask, client: FlaskClient, school: str = LINCOLN) -> Any:
    with database(app).session_factory() as session:
        public_id = session.scalar(select(School.public_id).where(School.name == school))
    token = csrf_token(client, "/admin/test-alerts")
    return client.post("/admin/test-alerts", data={"csrf_token": token, "school": public_id})


def test_a_test_alert_arrives_marked_test_is_acknowledged_and_reported_and_no_record_shows(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    kiosk, _ = enroll_client(app, LINCOLN)
    client = admin(app)

    response = send_from_page(app, client)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Test alert sent to 1 contact" in page
    assert deliver(app) == 1

    [message] = smtp_server.messages
    assert message["To"] == DESIGNEE
    subject = subject_of(message)
    assert subject.startswith(f"TEST ALERT — no action at the school: {LINCOLN}")
    body = body_of(message)
    assert body.startswith("TEST ALERT — no action at the school.")
    assert "/office/encounters/" not in body
    link = ack_link(message)
    assert link.startswith("http://kiosk.test/ack/")
    path = link.removeprefix("http://kiosk.test")

    # The link works like a real alert's: opening it changes nothing, the button acknowledges.
    contact_browser = app.test_client()
    shown = contact_browser.get(path).get_data(as_text=True)
    assert f"Acknowledge the test alert for {LINCOLN}" in shown
    assert "Dana Reyes" in shown
    assert "Not acknowledged" in client.get("/admin/test-alerts").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', shown)
    assert token
    done = contact_browser.post(path, data={"csrf_token": token.group(1)})
    assert done.status_code == 200
    assert "Test alert acknowledged at" in done.get_data(as_text=True)
    again = contact_browser.post(path, data={"csrf_token": token.group(1)})
    assert "already acknowledged" in again.get_data(as_text=True)

    # The administration sees who and how fast.
    with database(app).session_factory() as session:
        test = session.scalars(select(TestAlert)).one()
        seconds = int((test.acknowledged_at - test.sent_at).total_seconds())
    listing = client.get("/admin/test-alerts").get_data(as_text=True)
    row = re.search(r'<tr data-test="[^"]+">(.*?)</tr>', listing, re.S)
    assert row, listing
    assert "Dana Reyes" in row.group(1)
    assert f"{seconds} s" in row.group(1)

    # Never a record: not at the desk, not on the office's list, not counted anywhere.
    assert kiosk.get("/desk/status.json").get_json() == {"open": False}
    assert "start-button" in kiosk.get("/desk/").get_data(as_text=True)
    designee = login(app, DESIGNEE, "demo-password")
    assert designee.get("/office/encounters.json").get_json()["encounters"] == []
    home = designee.get("/office/").get_data(as_text=True)
    assert "TEST" not in home and "test alert" not in home.lower()
    with database(app).session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Encounter)) == 0
        # Sending and acknowledging are both on the audit log.
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert "admin.test_alert.send" in actions
    assert "test_alert.acknowledge" in actions


def test_a_link_for_another_contact_or_a_forged_one_acknowledges_nothing(
    app: Flask, district: Any
) -> None:
    with unit_of_work(database(app).session_factory) as session:
        school = setup.find_school(session, LINCOLN)
        sent = send_test_alert(session, school, Links.from_settings(app.config), now())
        other = session.scalar(
            select(Contact).where(Contact.school_id == school.id, Contact.level == 2)
        )
        assert other is not None
        links = Links.from_settings(app.config)
        wrong = links.acknowledge_test(sent.test.public_id, other.id)
        forged = Links("http://kiosk.test", "another-key").acknowledge_test(
            sent.test.public_id, sent.contacts[0].id
        )
        # A real alert's link cannot name a test alert either.
        real_kind = links.acknowledge(sent.test.public_id, sent.contacts[0].id)
    client = app.test_client()
    for link in (wrong, forged, real_kind):
        response = client.get(link.removeprefix("http://kiosk.test"))
        assert response.status_code == 400
        assert "This link is not valid" in response.get_data(as_text=True)


def test_a_test_goes_to_the_level_one_contacts_of_the_moment_and_never_escalates(
    app: Flask, district: Any
) -> None:
    with unit_of_work(database(app).session_factory) as session:
        school = setup.find_school(session, LINCOLN)
        # Open every hour of every day: the usual level-1 contacts, not the after-hours one.
        school.hours_open, school.hours_close, school.school_days = (
            "00:00",
            "23:59",
            "0,1,2,3,4,5,6",
        )
        setup.add_contact(
            session,
            setup.ContactInput(
                school=LINCOLN, name="Night line", address="night@district.test", after_hours=True
            ),
        )
        sent = send_test_alert(session, school, Links.from_settings(app.config), now())
        names = [c.name for c in sent.contacts]
    assert names == ["Dana Reyes"]
    with database(app).session_factory() as session:
        rows = session.scalars(select(OutboxMessage)).all()
    assert [(r.kind, r.level, r.encounter_id) for r in rows] == [("test", 1, None)]
    # Long after every escalation window, the delivery rounds add nothing.
    later = now() + timedelta(hours=2)
    deliver(app, now=later)
    with database(app).session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_a_school_with_nobody_at_level_one_is_told_so(app: Flask, district: Any) -> None:
    with unit_of_work(database(app).session_factory) as session:
        school = setup.create_school(session, "Oak School", "America/Denver", "")
        school_id = school.id
    with (
        pytest.raises(setup.SetupError, match="nobody is set up at level 1 for Oak School"),
        unit_of_work(database(app).session_factory) as session,
    ):
        school = session.get(School, school_id)
        assert school is not None
        send_test_alert(session, school, Links.from_settings(app.config), now())
    with database(app).session_factory() as session:
        assert session.scalar(select(func.count()).select_from(TestAlert)) == 0


def test_the_outbox_names_a_test_alerts_messages_as_having_no_record(
    app: Flask, district: Any
) -> None:
    client = admin(app)
    assert send_from_page(app, client).status_code == 302
    page = client.get("/office/outbox").get_data(as_text=True)
    assert "No record (test alert or district notice)" in page
    # A designee of one school does not see district messages at all.
    designee = login(app, "dana.reyes@demo-district.example", "demo-password")
    assert "No record (test alert" not in designee.get("/office/outbox").get_data(as_text=True)


@pytest.mark.parametrize("fmt", ["generic", "slack", "teams"])
def test_webhook_and_sms_text_say_test_and_offer_no_record(fmt: str) -> None:
    facts = messages.AlertFacts(
        school=LINCOLN,
        local_time="Monday 7 December 2026, 10:02:03 EST",
        channel="test alert",
        link="",
        reference="t1",
        ack_link="http://kiosk.test/ack/abc",
    )
    contact = Contact(channel="webhook", webhook_format=fmt, address="https://hooks.test/x")
    subject, body, _ = formats.for_channel(contact, "test", 1, messages.test_alert(facts), facts)
    assert subject.startswith("TEST ALERT — no action at the school")
    assert "TEST ALERT" in body
    assert "Open the record" not in body
    assert "http://kiosk.test/ack/abc" in body
    sms = formats.sms_text("test", 1, facts)
    assert sms.startswith("TEST ALERT - no action at the school")


def test_the_command_line_sends_a_test_alert_and_says_to_whom(app: Flask, district: Any) -> None:
    result = app.test_cli_runner().invoke(args=["alerts", "test", "--school", LINCOLN])
    assert result.exit_code == 0, result.output
    assert f"sent for {LINCOLN}" in result.output
    assert "Dana Reyes, email dana.reyes@demo-district.example" in result.output
    listing = admin(app).get("/admin/test-alerts").get_data(as_text=True)
    assert "<td>command line</td>" in listing
    result = app.test_cli_runner().invoke(args=["alerts", "test", "--school", "Nowhere"])
    assert result.exit_code != 0
    assert "no school named 'Nowhere'" in result.output


def test_other_roles_cannot_send_test_alerts(app: Flask, district: Any) -> None:
    create_user(app, "designee@district.test", "designee", LINCOLN)
    client = login(app, "designee@district.test")
    assert client.get("/admin/test-alerts").status_code == 403


def now() -> datetime:
    return now_utc()


def test_two_contacts_acknowledging_at_once_record_exactly_one_first(
    app: Flask, district: Any
) -> None:
    from tests.test_races import together

    with unit_of_work(database(app).session_factory) as session:
        setup.add_contact(
            session,
            setup.ContactInput(school=LINCOLN, name="Second", address="second@district.test"),
        )
    for _ in range(4):
        with unit_of_work(database(app).session_factory) as session:
            school = setup.find_school(session, LINCOLN)
            sent = send_test_alert(session, school, Links.from_settings(app.config), now())
            links = Links.from_settings(app.config)
            paths = [
                links.acknowledge_test(sent.test.public_id, c.id).removeprefix("http://kiosk.test")
                for c in sent.contacts
            ]
            test_id = sent.test.id
        assert len(paths) == 2
        presses = []
        for path in paths:
            browser = app.test_client()
            token = re.search(
                r'name="csrf_token" type="hidden" value="([^"]+)"',
                browser.get(path).get_data(as_text=True),
            )
            assert token
            presses.append(functools.partial(browser.post, path, data={"csrf_token": token[1]}))
        answers = [a.get_data(as_text=True) for a in together(*presses)]
        firsts = [i for i, text in enumerate(answers) if "Test alert acknowledged at" in text]
        assert len(firsts) == 1, answers
        with database(app).session_factory() as session:
            test = session.get(TestAlert, test_id)
            recorded = session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    AuditEntry.action == "test_alert.acknowledge",
                    AuditEntry.subject == f"test_alert:{test.public_id}" if test else "",
                )
            )
        assert test is not None and test.acknowledged_contact_id == sent.contacts[firsts[0]].id
        assert recorded == 1
