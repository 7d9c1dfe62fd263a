"""The kiosks page in Chromium: an admin enrolls a kiosk, a second browser types the short
code and becomes the kiosk, checks itself, and shows it is no longer set up once revoked."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.axe import assert_accessible
from tests.browser.conftest import Console, KioskServer, sign_in

pytestmark = pytest.mark.browser

SCHOOL = "Riverside Middle School"
NAME = "North entrance"


def test_enroll_by_code_check_rename_and_revoke(
    server: KioskServer, new_context: Any, console: Console
) -> None:
    admin = new_context().new_page()
    console.watch(admin)
    sign_in(admin, server.base_url, "admin@demo-district.example", "demo-password")
    admin.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Kiosks"
    ).click()
    expect(admin.get_by_role("heading", name="Kiosks", exact=True)).to_be_visible()
    assert_accessible(admin)

    # Enroll: choose the school and a name, with the keyboard.
    admin.get_by_label("School").select_option(label=SCHOOL)
    admin.get_by_label("Name").fill(NAME)
    admin.get_by_label("Name").press("Enter")
    expect(admin.get_by_role("heading", name="Kiosk ready to set up")).to_be_visible()
    code = admin.locator("#enroll-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code), code
    expect(admin.locator("#enroll-link")).to_contain_text("/enroll/")
    assert_accessible(admin)

    # A second browser: the device at the desk. A mistyped code first, kept and explained.
    device = new_context().new_page()
    console.watch(device)
    device.clock.install()  # the idle screen's minute poll, without waiting a minute
    device.goto(server.base_url + "/enroll")
    expect(device.get_by_role("heading", name="Set up this device as a kiosk")).to_be_visible()
    assert_accessible(device)
    field = device.get_by_label("Setup code")
    field.press_sequentially("ZZZZ-ZZZZ")
    field.press("Enter")
    expect(device.get_by_text("That code does not work now")).to_be_visible()
    expect(device.get_by_label("Setup code")).to_have_value("ZZZZ-ZZZZ")
    assert_accessible(device)
    device.get_by_label("Setup code").fill("")
    device.get_by_label("Setup code").press_sequentially(code.replace("-", "").lower())
    device.get_by_role("button", name="Continue").click()
    expect(device.get_by_text(SCHOOL)).to_be_visible()
    assert_accessible(device)
    device.get_by_role("button", name="Set up this kiosk").click()
    expect(device.locator("#start-button")).to_have_text("Notify district office")

    # The device check, from the start screen.
    device.get_by_role("link", name="Check this device").click()
    expect(device.get_by_role("heading", name="Device check")).to_be_visible()
    expect(device.locator("#check-setup dd")).to_have_text(f"Yes, for {SCHOOL}")
    expect(device.locator("#server-answer")).to_have_text(
        re.compile(r"^Yes, the server answered in \d+ ms\.$")
    )
    assert_accessible(device)
    device.get_by_role("link", name="Back to the start screen").click()
    expect(device.locator("#start-button")).to_be_visible()

    # The admin sees it set up, renames it, then revokes it (after a confirmation).
    admin.goto(server.base_url + "/admin/kiosks")
    row = admin.locator("tr", has_text=NAME)
    expect(row).to_contain_text("Active")
    row.get_by_role("link", name=re.compile("^Rename")).click()
    assert_accessible(admin)
    admin.get_by_label("Name").fill(NAME + " desk")
    admin.get_by_role("button", name="Save name").click()
    expect(admin.get_by_text(f"Renamed the kiosk to {NAME} desk.")).to_be_visible()
    admin.locator("tr", has_text=NAME + " desk").get_by_role(
        "link", name=re.compile("^Revoke")
    ).click()
    expect(admin.get_by_role("heading", name="Revoke this kiosk?")).to_be_visible()
    assert_accessible(admin)
    admin.get_by_role("button", name="Revoke this kiosk").click()
    expect(admin.locator("tr", has_text=NAME + " desk")).to_contain_text("Revoked")

    # The idle kiosk's next poll (about a minute later) finds out, and the screen says so.
    expect(device.locator("#start-button")).to_be_visible()
    device.clock.run_for(61_000)
    expect(device.get_by_role("heading", name="This device is no longer set up")).to_be_visible()
    expect(device.locator("#start-button")).to_have_count(0)
    # The refusals the pages were meant to answer with; nothing else (no script or CSP error).
    expected = re.compile(r"/(enroll|desk/|desk/status.json): Failed to load resource: .* 40[34]")
    assert [e for e in console.errors if not expected.search(e)] == []


def test_the_device_check_answers_a_device_that_is_not_a_kiosk(
    server: KioskServer, new_context: Any, console: Console
) -> None:
    page = new_context().new_page()
    console.watch(page)
    page.goto(server.base_url + "/check")
    expect(page.locator("#check-setup dd")).to_have_text(
        "No. This device is not set up as a kiosk."
    )
    expect(page.locator("#server-answer")).to_have_text(re.compile(r"answered in \d+ ms"))
    expect(page.locator("#messages-answer")).to_have_text("Going out normally.")
    assert_accessible(page)
    page.get_by_role("link", name="Set up this device with a code").click()
    expect(page.get_by_label("Setup code")).to_be_visible()
    assert console.errors == []
