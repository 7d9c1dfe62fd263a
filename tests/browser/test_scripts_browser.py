"""Scripts in Chromium: an admin edits a block's words and previews them; counsel signs in and
approves; the next tap at a kiosk shows the new words. axe-core checks each page."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.axe import assert_accessible
from tests.browser.conftest import BIN, Console, KioskServer, enroll_kiosk, run, sign_in

pytestmark = pytest.mark.browser

COUNSEL = "counsel@demo-district.example"
PASSWORD = "counsel-password-123"
NEW_WORDS = "Thank you. The district office has been contacted and will answer your request."


@pytest.fixture(scope="module")
def scripts_server(kiosk_servers: Callable[..., KioskServer]) -> KioskServer:
    """A server of its own: approving a script here changes what every desk on it says."""
    server = kiosk_servers(SCRIPTS_TEST_SERVER="1")
    run(
        [str(BIN / "flask"), "--app", "app", "users", "create", "--email", COUNSEL]
        + ["--name", "Casey Counsel", "--role", "counsel"],
        {**server.env, "KIOSK_NEW_PASSWORD": PASSWORD},
    )
    return server


def test_admin_edits_and_previews_counsel_approves_and_the_desk_shows_it(
    scripts_server: KioskServer, new_context: Any, console: Console
) -> None:
    base = scripts_server.base_url
    admin = new_context().new_page()
    console.watch(admin)
    sign_in(admin, base, "admin@demo-district.example", "demo-password")
    admin.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Scripts"
    ).click()
    expect(admin.get_by_role("heading", name="Scripts", exact=True)).to_be_visible()
    expect(admin.locator("#version-1")).to_contain_text("In use at the desk")
    expect(admin.locator("#version-1")).to_contain_text("Draft: not approved by counsel")
    assert_accessible(admin)

    admin.locator("#version-1").get_by_role("link").click()
    expect(admin.get_by_role("heading", name=re.compile("Script version 1"))).to_be_visible()
    assert_accessible(admin)
    admin.get_by_role("link", name="Edit as a new version").click()
    expect(admin.get_by_role("heading", name="New version from version 1")).to_be_visible()
    assert_accessible(admin)
    # The JSON editor is one link away, for whole packs.
    admin.get_by_role("link", name="Edit as JSON instead").click()
    expect(admin.get_by_label("The script pack (JSON)")).to_be_visible()
    assert_accessible(admin)
    admin.get_by_role("link", name="Edit block by block instead").click()

    block = admin.locator("li.script-block").filter(
        has_text=re.compile(r"^\s*Start; Request at the front office")
    )
    block.locator("summary").click()
    say = block.get_by_label("Say")
    expect(say).to_be_visible()
    # A mistake comes back with the words as typed and the reason beside them.
    say.fill("You must comply.")
    admin.get_by_role("button", name="Save as a new draft").click()
    block = admin.locator("li.script-block").filter(has_text="You must comply.")
    expect(block.locator(".error")).to_contain_text('the word "comply" is not allowed')
    expect(block.get_by_label("Say")).to_have_value("You must comply.")
    assert_accessible(admin)

    block.get_by_label("Say").fill(NEW_WORDS)
    block.get_by_label("Say").press("Enter")
    expect(admin.get_by_role("heading", name=re.compile("Script version 2"))).to_be_visible()
    expect(admin.locator("#version-status")).to_contain_text("Draft: not approved by counsel")
    expect(admin.locator("#changes")).to_contain_text(NEW_WORDS)
    assert_accessible(admin)

    admin.get_by_role("link", name="Preview at the desk").click()
    expect(admin.locator("#preview-banner")).to_contain_text("Preview: version 2")
    expect(admin.locator("#say-line")).to_have_text(NEW_WORDS)
    assert_accessible(admin)
    # Another situation, chosen with the keyboard.
    admin.get_by_label("Situation").select_option(label="Request by phone")
    admin.get_by_role("button", name="Show").press("Enter")
    expect(admin.locator("#now-label")).to_have_text("Request by phone")
    assert_accessible(admin)

    counsel = new_context().new_page()
    console.watch(counsel)
    sign_in(counsel, base, COUNSEL, PASSWORD)
    counsel.get_by_role("navigation", name="Office").get_by_role("link", name="Scripts").click()
    expect(counsel.locator("#version-2")).to_contain_text("Draft: not approved by counsel")
    counsel.locator("#version-2").get_by_role("link").click()
    due = counsel.get_by_label("Review due")
    expect(due).to_have_value(re.compile(r"^\d{4}-\d{2}-\d{2}$"))
    assert_accessible(counsel)
    due.fill("2030-06-30")
    due.press("Enter")
    expect(counsel.locator(".flash")).to_contain_text("Version 2 is approved")
    expect(counsel.locator("#version-status")).to_contain_text("In use at the desk")
    expect(counsel.locator("#review-due")).to_have_text("2030-06-30")
    assert_accessible(counsel)

    desk = new_context().new_page()
    console.watch(desk)
    enroll_kiosk(desk, scripts_server.enrollment_link())
    desk.locator("#start-button").click()
    expect(desk.locator("#say-line")).to_have_text(NEW_WORDS)
    # The one refused save answered 422, as a form with a problem does; nothing else failed.
    assert [e for e in console.errors if "status of 422" not in e] == []
