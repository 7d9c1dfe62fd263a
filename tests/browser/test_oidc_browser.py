"""Sign-in with the district's identity provider in a real browser: Chromium, the app under
gunicorn and a real OpenID Connect provider (oidc-provider under node), all on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.axe import assert_accessible
from tests.browser.conftest import Console, KioskServer
from tests.conftest import free_port
from tests.oidc.support import CLIENT_ID, CLIENT_SECRET, Provider, running_provider

pytestmark = pytest.mark.browser

DANA = "dana.reyes@demo-district.example"
STRANGER = "stranger@demo-district.example"
LABEL = "Sign in with the district account"


@pytest.fixture(scope="module")
def provider_and_server(
    kiosk_servers: Callable[..., KioskServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Provider, KioskServer]]:
    """The server is told the provider's address first; the provider, started next, is told
    the server's callback (its port is only known once gunicorn runs)."""
    port = free_port()
    server = kiosk_servers(
        KIOSK_OIDC_ISSUER=f"http://127.0.0.1:{port}",
        KIOSK_OIDC_CLIENT_ID=CLIENT_ID,
        KIOSK_OIDC_CLIENT_SECRET=CLIENT_SECRET,
        KIOSK_OIDC_LABEL=LABEL,
    )
    accounts = [
        {"email": DANA, "email_verified": True},
        {"email": STRANGER, "email_verified": True},
    ]
    redirects = [server.base_url + "/login/oidc/callback"]
    directory = tmp_path_factory.mktemp("oidc-browser")
    with running_provider(directory, redirects, accounts, port=port) as provider:
        yield provider, server


def test_a_designee_signs_in_with_the_district_account(
    provider_and_server: tuple[Provider, KioskServer],
    new_context: Callable[..., Any],
    console: Console,
) -> None:
    provider, server = provider_and_server
    page = new_context().new_page()
    console.watch(page)
    page.goto(server.base_url + "/office/outbox")
    expect(page).to_have_url(server.base_url + "/login?next=/office/outbox")
    button = page.get_by_role("button", name=LABEL)
    expect(button).to_be_visible()
    assert_accessible(page)

    # The keyboard reaches the button first, and Enter presses it.
    page.keyboard.press("Tab")  # the brand link
    page.keyboard.press("Tab")
    expect(button).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
    assert page.url.startswith(provider.issuer + "/interaction/")
    page.get_by_label("Email").fill(DANA)
    page.get_by_role("button", name="Continue").click()

    expect(page).to_have_url(server.base_url + "/office/outbox")
    assert console.errors == []  # no Content-Security-Policy refusal on the way


def test_an_email_without_an_account_comes_back_to_a_calm_sentence(
    provider_and_server: tuple[Provider, KioskServer],
    new_context: Callable[..., Any],
) -> None:
    _, server = provider_and_server
    page = new_context().new_page()
    page.goto(server.base_url + "/login")
    page.get_by_role("button", name=LABEL).click()
    page.get_by_label("Email").fill(STRANGER)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(server.base_url + "/login")
    expect(page.get_by_role("status")).to_have_text(
        "This account is not set up for the office. Ask the district's administrator."
    )
    assert_accessible(page)
    page.goto(server.base_url + "/office/")
    expect(page).to_have_url(server.base_url + "/login?next=/office/")
