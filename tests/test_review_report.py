"""The printable incident report: what it shows, who may open it, and that each view is
audited like the record page."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.localtime import local
from kiosk.models import AuditEntry, Contact, OutboxMessage
from kiosk.webdb import database
from tests.conftest import deliver, tap_start, the_encounter
from tests.test_policy import LINCOLN, create_user, form_token, login

DANA = "dana.reyes@demo-district.example"  # designee, Lincoln Elementary
JORDAN = "jordan.kim@demo-district.example"  # designee, Riverside Middle
ADMIN = "admin@demo-district.example"


def shown_at(app: Flask, moment: object) -> str:
    """A moment as the report prints it: the school's local time, with the zone."""
    return local(moment, "America/New_York").strftime("%Y-%m-%d %H:%M:%S %Z")  # type: ignore[arg-type]


def started(app: Flask, kiosk_client: FlaskClient) -> str:
    assert tap_start(kiosk_client).status_code == 302
    deliver(app)
    return the_encounter(app).public_id


def report_url(public_id: str) -> str:
    return f"/review/encounters/{public_id}/report"


def test_the_report_shows_the_school_times_who_was_told_and_the_outcome(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    public_id = started(app, kiosk_client)
    dana = login(app, DANA, "demo-password")
    token = form_token(app, dana)
    record = f"/office/encounters/{public_id}"
    assert dana.post(f"{record}/acknowledge", data={"csrf_token": token}).status_code == 302
    response = dana.post(
        f"{record}/resolve", data={"csrf_token": token, "outcome": "left", "notes": ""}
    )
    assert response.status_code == 302

    page = dana.get(report_url(public_id))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    encounter = the_encounter(app)
    with database(app).session_factory() as session:
        message = session.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient == DANA)
        ).one()
        contact = session.get(Contact, message.contact_id)
        assert contact is not None
        contact_name = contact.name
    assert message.sent_at is not None and encounter.first_acknowledged_at is not None
    assert encounter.resolved_at is not None
    assert "Demo Unified School District" in body and LINCOLN in body
    assert "America/New_York" in body
    for moment in (
        encounter.started_at,
        encounter.first_alert_sent_at,
        encounter.first_acknowledged_at,
        encounter.resolved_at,
    ):
        assert moment is not None and shown_at(app, moment) in body
    # Who was told and when: the contact, the channel, sent at and acknowledged at, one row.
    rows = re.findall(r"<tr><td>(.*?)</tr>", body, re.S)
    told = [row for row in rows if contact_name in row]
    assert len(told) == 1
    assert "email" in told[0]
    assert shown_at(app, message.sent_at) in told[0]
    assert shown_at(app, encounter.first_acknowledged_at) in told[0]
    assert re.search(r'<dd id="outcome">They left[^<]*</dd>', body), body
    assert 'id="script">Version' in body
    assert f'href="/office/encounters/{public_id}"' in body
    assert '<button type="button" class="button primary" id="print-report">Print</button>' in body


def test_an_open_encounter_says_what_has_not_happened_yet(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    public_id = started(app, kiosk_client)
    body = login(app, DANA, "demo-password").get(report_url(public_id)).get_data(as_text=True)
    assert body.count("not recorded") >= 2  # first acknowledged, resolved
    assert "not acknowledged" in body


def test_the_record_page_links_to_the_report(app: Flask, kiosk_client: FlaskClient) -> None:
    public_id = started(app, kiosk_client)
    body = login(app, DANA, "demo-password").get(f"/office/encounters/{public_id}")
    assert f'href="{report_url(public_id)}" id="report-link">Printable report</a>' in (
        body.get_data(as_text=True)
    )


def test_only_those_who_may_read_the_record_may_open_its_report(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    public_id = started(app, kiosk_client)
    url = report_url(public_id)
    assert login(app, JORDAN, "demo-password").get(url).status_code == 404
    assert login(app, ADMIN, "demo-password").get(url).status_code == 403
    create_user(app, "desk@district.test", "front_desk", LINCOLN)
    assert login(app, "desk@district.test").get(url).status_code == 403
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert login(app, DANA, "demo-password").get(report_url("no-such-record")).status_code == 404


def test_each_view_of_the_report_is_audited(app: Flask, kiosk_client: FlaskClient) -> None:
    public_id = started(app, kiosk_client)
    dana = login(app, DANA, "demo-password")
    assert dana.get(report_url(public_id)).status_code == 200
    assert dana.get(report_url(public_id)).status_code == 200
    with database(app).session_factory() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "encounter.report")
        ).all()
    assert [e.subject for e in entries] == [f"encounter:{public_id}"] * 2
    assert all(e.actor.startswith("user:") for e in entries)
    # Refused views are not recorded as views.
    login(app, JORDAN, "demo-password").get(report_url(public_id))
    with database(app).session_factory() as session:
        count = len(
            session.scalars(select(AuditEntry).where(AuditEntry.action == "encounter.report")).all()
        )
    assert count == 2


def test_the_report_has_no_inline_script(app: Flask, kiosk_client: FlaskClient) -> None:
    public_id = started(app, kiosk_client)
    response = login(app, DANA, "demo-password").get(report_url(public_id))
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    body = response.get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", body)
    assert scripts and all("src=" in tag for tag in scripts)
    assert "onclick" not in body and "<style" not in body
