"""API tokens in Chromium, against a real gunicorn: an admin makes a token for a reviewer
(a missing label comes back with the choice kept), the token reads the log over HTTP with
no cookie set, and stops at once when the admin revokes it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.axe import assert_accessible
from tests.browser.conftest import BIN, Console, KioskServer, run, sign_in

pytestmark = pytest.mark.browser

HOLDER = "Rowan API Reviewer"
EMAIL = "rowan.api@district.test"


def api_get(server: KioskServer, token: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(  # noqa: S310 - the test server's own loopback URL
        f"{server.base_url}/api/v1/encounters?state=open",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read()), dict(refused.headers)


def test_an_admin_makes_a_token_that_reads_the_log_until_revoked(
    server: KioskServer, new_context: Any, console: Console
) -> None:
    run(
        [str(BIN / "flask"), "--app", "app", "users", "create", "--email", EMAIL, "--name"]
        + [HOLDER, "--role", "reviewer"],
        {**server.env, "KIOSK_NEW_PASSWORD": "browser-test-password-1"},
    )
    admin = new_context().new_page()
    console.watch(admin)
    sign_in(admin, server.base_url, "admin@demo-district.example", "demo-password")
    admin.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="API tokens"
    ).click()
    expect(admin.get_by_role("heading", name="API tokens", exact=True)).to_be_visible()
    assert_accessible(admin)

    admin.get_by_label("Held by").select_option(label=f"{HOLDER} ({EMAIL})")
    admin.get_by_role("button", name="Make the token").click()
    expect(admin.get_by_text("Enter what will use the token.")).to_be_visible()
    assert admin.locator("#holder option:checked").inner_text().startswith(HOLDER)
    assert_accessible(admin)

    admin.get_by_label("Label").fill("Records office report")
    admin.get_by_label("Label").press("Enter")
    expect(admin.get_by_role("heading", name="Token made")).to_be_visible()
    token = admin.locator("#api-token").inner_text().strip()
    assert token.startswith("kapi_")
    assert_accessible(admin)

    status, body, headers = api_get(server, token)
    assert status == 200
    assert set(body) == {"items", "next_cursor", "next_url"}
    assert "Set-Cookie" not in headers

    admin.get_by_role("link", name="Back to API tokens").click()
    row = admin.locator("tr", has_text="Records office report")
    expect(row).to_contain_text(token[:12])
    expect(row).not_to_contain_text(token)
    row.get_by_role("button", name="Revoke the token Records office report").click()
    expect(admin.locator("tr", has_text="Records office report")).to_contain_text("Revoked")

    status, body, headers = api_get(server, token)
    assert status == 401
    assert body["error"] == "invalid_token"
    assert headers["WWW-Authenticate"].startswith("Bearer")
