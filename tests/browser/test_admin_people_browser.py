"""An administrator, from the browser alone: adds a school, invites a front-desk person and a
designee, imports people from a file; the designee sets a password through the emailed link
and signs in; the administrator disables them and their open page stops working.
Every page on the way passes axe's WCAG 2.1 AA rules."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.axe import assert_accessible
from tests.browser.conftest import KioskServer, sign_in
from tests.conftest import SmtpSink

pytestmark = pytest.mark.browser

ADMIN = "admin@demo-district.example"
SCHOOL = "Cedar Park School"
PASSWORD = "cedar-designee-password"


def mailed_link(sink: SmtpSink, recipient: str, timeout: float = 15.0) -> str:
    """The welcome link in the email the person received (through the real outbox and SMTP)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sink.lock:
            for message in sink.messages:
                if message["To"] == recipient:
                    body = message.get_payload(decode=True).decode()
                    return next(line for line in body.splitlines() if "/welcome/" in line)
        time.sleep(0.1)
    raise AssertionError(f"no email to {recipient}")


def invite(page: Any, name: str, email: str, role: str) -> str:
    page.get_by_role("link", name="Invite a person").click()
    expect(page.get_by_role("heading", name="Invite a person")).to_be_visible()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label(f"{role} at {SCHOOL}").check()
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("heading", name=f"Invitation link for {name}")).to_be_visible()
    assert_accessible(page)
    link = page.get_by_label("Link").input_value()
    assert "/welcome/" in link
    page.get_by_role("link", name="People", exact=True).last.click()
    return link


def test_an_admin_sets_up_a_school_and_its_people_from_the_browser(
    server: KioskServer, new_context: Any, smtp_sink: SmtpSink, tmp_path: Any
) -> None:
    admin = new_context().new_page()
    sign_in(admin, server.base_url, ADMIN, "demo-password")
    admin.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Schools"
    ).click()
    expect(admin.get_by_role("heading", name="Schools", exact=True)).to_be_visible()
    assert_accessible(admin)

    admin.get_by_role("link", name="Add a school").click()
    expect(admin.get_by_role("heading", name="Add a school")).to_be_visible()
    assert_accessible(admin)
    admin.get_by_label("School name").fill(SCHOOL)
    admin.get_by_label("Time zone", exact=True).select_option("America/Chicago")
    admin.get_by_label("Office phone").fill("(555) 010-0300")
    admin.get_by_label("Opens at").fill("16:00")
    admin.get_by_label("Closes at").fill("08:00")
    admin.get_by_role("button", name="Add the school").click()
    # The mistake is named next to its field, and what was typed is still there.
    expect(admin.locator("#hours_close-error")).to_contain_text("open before it closes")
    expect(admin.get_by_label("School name")).to_have_value(SCHOOL)
    assert_accessible(admin)
    admin.get_by_label("Opens at").fill("07:30")
    admin.get_by_label("Closes at").fill("15:30")
    # Submitted from the keyboard, as well as by the button.
    admin.get_by_label("Closes at").press("Enter")
    expect(admin.get_by_role("link", name=SCHOOL)).to_be_visible()

    admin.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="People"
    ).click()
    expect(admin.get_by_role("heading", name="People", exact=True)).to_be_visible()
    assert_accessible(admin)
    invite(admin, "Lee Front", "lee.front@district.test", "Front desk")
    link = invite(admin, "Cam Designee", "cam.designee@district.test", "Designee")
    assert mailed_link(smtp_sink, "cam.designee@district.test") == link

    # The designee opens the link in their own browser and sets a password.
    designee = new_context().new_page()
    designee.goto(link)
    expect(designee.get_by_role("heading", name="Set your password")).to_be_visible()
    assert_accessible(designee)
    designee.get_by_label("New password", exact=True).fill(PASSWORD)
    designee.get_by_label("New password again").fill(PASSWORD)
    designee.get_by_role("button", name="Set the password").click()
    expect(designee.get_by_text("Your password is set.")).to_be_visible()
    sign_in(designee, server.base_url, "cam.designee@district.test", PASSWORD)
    expect(designee.get_by_role("link", name="Sign in")).to_have_count(0)
    assert "/office" in designee.url
    # The link worked once.
    used = new_context().new_page()
    used.goto(link)
    expect(used.get_by_role("heading", name="This link is not valid")).to_be_visible()
    assert_accessible(used)

    # The administrator disables the designee; the designee's next request is refused.
    admin.get_by_role("link", name="Cam Designee").click()
    expect(admin.get_by_role("heading", name="Cam Designee")).to_be_visible()
    assert_accessible(admin)
    admin.get_by_role("button", name="Disable Cam Designee").click()
    expect(admin.get_by_text("Cam Designee is disabled")).to_be_visible()
    designee.reload()
    expect(designee.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(designee, server.base_url, "cam.designee@district.test", PASSWORD)
    expect(designee.get_by_text("do not match")).to_be_visible()

    # The front-desk person gets a PIN, typed and sent from the keyboard.
    admin.get_by_role("link", name="People", exact=True).last.click()
    admin.get_by_role("link", name="Lee Front").click()
    admin.get_by_label("New PIN (6 digits)").fill("482915")
    admin.get_by_label("New PIN (6 digits)").press("Enter")
    expect(admin.get_by_text("new PIN is set")).to_be_visible()

    # An import: preview first (nothing written), then apply.
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(
        "name,email,role,school\n"
        f"Ari Import,ari.import@district.test,designee,{SCHOOL}\n"
        "Bo Import,bo.import@district.test,reviewer,\n"
    )
    admin.get_by_role("link", name="People", exact=True).last.click()
    admin.get_by_role("link", name="Import from a CSV file").click()
    expect(admin.get_by_role("heading", name="Import people from a CSV file")).to_be_visible()
    assert_accessible(admin)
    admin.get_by_label("CSV file").set_input_files(str(csv_file))
    admin.get_by_role("button", name="Preview the changes").click()
    expect(admin.get_by_role("heading", name="People to add (2)")).to_be_visible()
    assert_accessible(admin)
    admin.get_by_role("button", name="Apply these changes").click()
    expect(admin.get_by_role("heading", name="Import applied")).to_be_visible()
    assert_accessible(admin)
    admin.get_by_role("link", name="People", exact=True).last.click()
    expect(admin.get_by_role("link", name="Ari Import")).to_be_visible()
