"""The second factor in Chromium, with the keyboard only: a counsel sets it up at first
sign-in and enters a code the next time; a reviewer turns it on from the account page,
renews the recovery codes and turns it off. axe-core checks each page on the way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from tests.browser.axe import assert_accessible
from tests.browser.conftest import BIN, KioskServer, run

pytestmark = pytest.mark.browser

PASSWORD = "browser-password-123"  # noqa: S105 - a test account on a throwaway server


def create_user(server: KioskServer, email: str, role: str) -> None:
    env = {**server.env, "KIOSK_NEW_PASSWORD": PASSWORD}
    args = ["users", "create", "--email", email, "--name", f"Browser {role}", "--role", role]
    run([str(BIN / "flask"), "--app", "app", *args], env)


def tab_to(page: Any, locator: Any, limit: int = 40) -> None:
    """Press Tab until the control has the focus, as a keyboard user reaches it."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if locator.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{locator} is not reachable with Tab")


def sign_in_with_keyboard(page: Any, base_url: str, email: str) -> None:
    page.goto(base_url + "/login")
    tab_to(page, page.get_by_label("Email"))
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def type_code(page: Any, field: Any, code: str, button: Any) -> None:
    tab_to(page, field)
    page.keyboard.type(code)
    tab_to(page, button)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def app_codes(secret: str) -> tuple[pyotp.TOTP, int]:
    totp = pyotp.TOTP(secret)
    return totp, totp.timecode(datetime.now(UTC))


def test_counsel_sets_it_up_at_first_sign_in_then_enters_a_code(
    server: KioskServer, new_context: Any
) -> None:
    email = "browser.counsel@district.test"
    create_user(server, email, "counsel")
    page = new_context().new_page()
    sign_in_with_keyboard(page, server.base_url, email)

    expect(page.get_by_role("heading", name="Set up a second factor")).to_be_visible()
    expect(page.get_by_role("img", name="QR code that adds this account")).to_be_visible()
    assert_accessible(page)
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    totp, step = app_codes(secret)
    code_field = page.get_by_label("Code from your authenticator app")
    confirm = page.get_by_role("button", name="Confirm code")
    type_code(
        page, code_field, "000000" if totp.generate_otp(step) != "000000" else "111111", confirm
    )
    expect(page.get_by_text("That code does not match")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Code from your authenticator app").fill("")
    type_code(page, code_field, totp.generate_otp(step), confirm)

    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    assert_accessible(page)
    go_on = page.get_by_role("link", name="I have kept these codes: continue")
    tab_to(page, go_on)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Open encounters")).to_be_visible()

    account = page.get_by_role("link", name="Account security")
    tab_to(page, account)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_text("Your role requires a second factor, so it stays on.")).to_be_visible()
    assert_accessible(page)

    # The next sign-in, in a fresh browser, asks for the code.
    later = new_context().new_page()
    sign_in_with_keyboard(later, server.base_url, email)
    expect(later.get_by_role("heading", name="Enter your code")).to_be_visible()
    assert_accessible(later)
    type_code(
        later,
        later.get_by_label("Code", exact=True),
        totp.generate_otp(step + 1),
        later.get_by_role("button", name="Sign in"),
    )
    expect(later.get_by_role("heading", name="Open encounters")).to_be_visible()


def test_a_reviewer_turns_it_on_renews_codes_and_turns_it_off(
    server: KioskServer, new_context: Any
) -> None:
    email = "browser.reviewer@district.test"
    create_user(server, email, "reviewer")
    page = new_context().new_page()
    sign_in_with_keyboard(page, server.base_url, email)
    page.goto(server.base_url + "/account/security")
    expect(page.get_by_text("Off. You sign in with your password alone.")).to_be_visible()
    assert_accessible(page)
    set_up = page.get_by_role("link", name="Set up a second factor")
    tab_to(page, set_up)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Set up a second factor")).to_be_visible()
    assert_accessible(page)
    totp, step = app_codes(page.locator("#totp-secret").inner_text().replace(" ", ""))
    type_code(
        page,
        page.get_by_label("Code from your authenticator app"),
        totp.generate_otp(step),
        page.get_by_role("button", name="Confirm code"),
    )
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    first = page.locator(".recovery-codes code").first.inner_text()
    page.get_by_role("link", name="I have kept these codes: continue").click()

    expect(page.get_by_text("On. Signing in asks for a code")).to_be_visible()
    assert_accessible(page)
    renew = page.get_by_role("region", name="New recovery codes")
    type_code(
        page,
        renew.get_by_label("Code from your authenticator app"),
        totp.generate_otp(step + 1),
        renew.get_by_role("button", name="Show new recovery codes"),
    )
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert first not in codes
    page.get_by_role("link", name="I have kept these codes: continue").click()

    off = page.get_by_role("region", name="Turn off")
    type_code(
        page,
        off.get_by_label("Code from your authenticator app"),
        codes[0],
        off.get_by_role("button", name="Turn off the second factor"),
    )
    expect(page.get_by_role("status")).to_contain_text("The second factor is off.")
    expect(page.locator("#second-factor-state")).to_have_text(
        "Off. You sign in with your password alone."
    )
