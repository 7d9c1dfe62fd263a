"""axe-core's WCAG 2.1 AA rules on the sign-in page and the administration home, in Chromium."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.axe import assert_accessible
from tests.browser.conftest import KioskServer, sign_in


def test_sign_in_and_administration_pages_pass_axe(server: KioskServer, new_context: Any) -> None:
    page = new_context().new_page()
    page.goto(server.base_url + "/login")
    assert_accessible(page)
    sign_in(page, server.base_url, "admin@demo-district.example", "demo-password")
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    assert_accessible(page)
