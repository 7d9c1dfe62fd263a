"""An administrator sets a school's alert routing and sends a test alert, in Chromium: the
test email arrives through the real SMTP server, its link is acknowledged by the contact, and
the administration page then shows who acknowledged and how fast."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.axe import assert_accessible
from tests.browser.conftest import SCHOOL, Console, KioskServer, sign_in
from tests.browser.test_kiosk_browser import text_of
from tests.conftest import SmtpSink

ADMIN_EMAIL = "admin@demo-district.example"
PASSWORD = "demo-password"  # noqa: S105 - the printed demo credential
CONTACT = "Morgan Lee"
CONTACT_EMAIL = "morgan.lee@district.test"
ACK_LINE = "Acknowledge (opens a page where you confirm):"
MAIL_SECONDS = 10.0


def subject_of(message: Message) -> str:
    return str(make_header(decode_header(str(message["Subject"]))))


def wait_for_test_mail(sink: SmtpSink, since: int) -> Message:
    deadline = time.monotonic() + MAIL_SECONDS
    while time.monotonic() < deadline:
        with sink.lock:
            fresh = list(sink.messages[since:])
        for message in fresh:
            if CONTACT_EMAIL in str(message["To"]) and subject_of(message).startswith("TEST"):
                return message
        time.sleep(0.05)
    with sink.lock:
        seen = [(str(m["To"]), subject_of(m)) for m in sink.messages[since:]]
    raise AssertionError(f"no test alert to {CONTACT_EMAIL} within {MAIL_SECONDS}s; got {seen}")


def ack_link(message: Message) -> str:
    lines = [line.strip() for line in text_of(message).splitlines()]
    assert ACK_LINE in lines, lines
    return lines[lines.index(ACK_LINE) + 1]


def watched(new_context: Callable[..., Any], console: Console) -> Page:
    page = new_context().new_page()
    console.watch(page)
    return page


@pytest.mark.browser
def test_an_admin_routes_a_school_and_a_test_alert_is_acknowledged_from_its_email(
    server: KioskServer,
    smtp_sink: SmtpSink,
    new_context: Callable[..., Any],
    console: Console,
) -> None:
    admin = watched(new_context, console)
    sign_in(admin, server.base_url, ADMIN_EMAIL, PASSWORD)
    admin.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Alert routing"
    ).click()
    expect(admin.get_by_role("heading", name="Alert routing", exact=True)).to_be_visible()
    assert_accessible(admin)

    admin.get_by_role("link", name=SCHOOL).click()
    expect(admin.get_by_role("heading", name=f"Alert routing: {SCHOOL}")).to_be_visible()
    assert_accessible(admin)

    # A contact, with a mistake first: the form comes back as typed, the reason beside it.
    admin.get_by_role("link", name="Add a contact").click()
    expect(admin.get_by_role("heading", name=f"Add a contact for {SCHOOL}")).to_be_visible()
    assert_accessible(admin)
    admin.get_by_label("Name", exact=True).fill(CONTACT)
    admin.get_by_label("Level", exact=True).select_option("1")
    admin.get_by_role("group", name="Channel").get_by_label("Email").check()
    admin.get_by_label("Address", exact=True).fill("morgan.lee")
    admin.get_by_role("button", name="Add contact").click()
    expect(admin.locator("#address-error")).to_have_text("An email contact needs an email address.")
    expect(admin.get_by_label("Name", exact=True)).to_have_value(CONTACT)
    assert_accessible(admin)
    admin.get_by_label("Address", exact=True).fill(CONTACT_EMAIL)
    admin.get_by_label("Address", exact=True).press("Enter")
    expect(admin.get_by_text(f"Contact added: {CONTACT}.")).to_be_visible()
    expect(admin.locator("#level1")).to_contain_text(CONTACT)

    # Escalation minutes, from the keyboard.
    admin.get_by_label("Level 2 after (minutes)").fill("4")
    admin.get_by_label("Level 3 after (minutes)").fill("9")
    admin.get_by_label("Re-alert every (minutes)").fill("6")
    admin.get_by_role("button", name="Save escalation times").focus()
    admin.keyboard.press("Enter")
    expect(admin.get_by_text("Escalation times saved.")).to_be_visible()
    expect(admin.get_by_label("Level 3 after (minutes)")).to_have_value("9")

    # The test alert.
    admin.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Test alerts"
    ).click()
    expect(admin.get_by_role("heading", name="Test alerts", exact=True)).to_be_visible()
    assert_accessible(admin)
    with smtp_sink.lock:
        since = len(smtp_sink.messages)
    admin.get_by_label("School").select_option(label=SCHOOL)
    admin.get_by_role("button", name="Send a test alert").click()
    expect(admin.locator(".flash-info")).to_contain_text(f"for {SCHOOL}")
    expect(admin.locator("#test-alerts tbody tr").first).to_contain_text("Not acknowledged")
    assert_accessible(admin)

    message = wait_for_test_mail(smtp_sink, since)
    assert subject_of(message).startswith(f"TEST ALERT — no action at the school: {SCHOOL}")
    link = ack_link(message)
    assert link.startswith(f"{server.base_url}/ack/"), link

    # The contact opens the link on their own device, with no sign-in, and acknowledges.
    contact = watched(new_context, console)
    contact.goto(link)
    expect(
        contact.get_by_role("heading", name=f"Acknowledge the test alert for {SCHOOL}")
    ).to_be_visible()
    assert_accessible(contact)
    contact.get_by_role("button", name="Acknowledge").click()
    expect(
        contact.get_by_role("heading", name=re.compile(r"^Test alert acknowledged at "))
    ).to_be_visible()
    assert_accessible(contact)

    admin.reload()
    row = admin.locator("#test-alerts tbody tr").first
    expect(row).to_contain_text(f"{CONTACT} (email)")
    expect(row.locator("td").nth(2)).to_have_text("Demo Administrator")
    expect(row.locator("td").nth(6)).to_have_text(re.compile(r"^\d+ s"))
    # The form sent back with its mistake answers 422, which Chromium logs; nothing else.
    unexpected = [e for e in console.errors if "status of 422" not in e]
    assert not unexpected, unexpected
