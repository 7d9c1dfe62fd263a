"""HTTPS behind a reverse proxy: forms work without a Referer, changes from other sites are
refused (and logged without the token), and the proxy is believed only as far as told."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask

from kiosk.auth.devices import issue_enrollment
from kiosk.clock import now_utc
from kiosk.db import writing
from kiosk.models import School
from kiosk.webdb import database
from tests.conftest import CSRF_PATTERN, encounters, start_fields

DANA = "dana.reyes@demo-district.example"
DEMO_PASSWORD = "demo-password"  # noqa: S105 (the demo district's sample password)
PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}


@pytest.fixture
def proxied(make_app: Any, district: Any) -> Flask:
    """The app as a district runs it: https base URL, one proxy in front."""
    app: Flask = make_app(BASE_URL="https://kiosk.district.test", PROXY_HOPS=1, SECURE_COOKIES=True)
    return app


def sign_in(client: Any, headers: dict[str, str], password: str = DEMO_PASSWORD) -> Any:
    page = client.get("/login", headers=headers).get_data(as_text=True)
    match = CSRF_PATTERN.search(page)
    assert match
    form = {"csrf_token": match.group(1), "email": DANA, "password": password}
    return client.post("/login", data=form, headers=headers)


def test_sign_in_over_https_behind_the_proxy_needs_no_referer(proxied: Flask) -> None:
    client = proxied.test_client()
    answer = sign_in(client, PROXIED)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert "Secure" in answer.headers["Set-Cookie"]
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_a_browser_form_with_a_null_origin_from_this_site_is_accepted(proxied: Flask) -> None:
    """Under no-referrer, browsers send Origin: null and say where the form came from."""
    headers = {**PROXIED, "Origin": "null", "Sec-Fetch-Site": "same-origin"}
    assert sign_in(proxied.test_client(), headers).status_code == 302
    same = {**PROXIED, "Origin": "https://kiosk.district.test"}
    assert sign_in(proxied.test_client(), same).status_code == 302


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://elsewhere.example"},
        {"Origin": "http://kiosk.district.test"},  # not the https site
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_change_sent_from_another_site_is_refused_and_logged_without_the_token(
    proxied: Flask, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    client = proxied.test_client()
    page = client.get("/login", headers=PROXIED).get_data(as_text=True)
    token = CSRF_PATTERN.search(page)
    assert token
    form = {"csrf_token": token.group(1), "email": DANA, "password": "demo-password"}
    with caplog.at_level(logging.WARNING, logger="kiosk.security"):
        answer = client.post("/login", data=form, headers={**PROXIED, **headers})
    assert answer.status_code == 400
    assert "not sent from this site" in answer.get_data(as_text=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "kiosk.security"]
    assert lines == ["form refused: POST /login The form came from another site."]
    assert token.group(1) not in caplog.text


def test_an_expired_form_on_a_secret_link_is_logged_without_the_link(
    proxied: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with writing(), database(proxied).session_factory() as session, session.begin():
        school = session.query(School).first()
        assert school is not None
        _, token = issue_enrollment(session, school, now_utc(), 1)
    client = proxied.test_client()
    with caplog.at_level(logging.WARNING, logger="kiosk.security"):
        answer = client.post(f"/enroll/{token}", data={}, headers=PROXIED)
    assert answer.status_code == 400
    assert "form refused: POST /enroll/[redacted]" in caplog.text
    assert token not in caplog.text


def test_kiosk_enrollment_and_tap_over_https_behind_the_proxy(proxied: Flask) -> None:
    with writing(), database(proxied).session_factory() as session, session.begin():
        school = session.query(School).first()
        assert school is not None
        _, token = issue_enrollment(session, school, now_utc(), 1)
    client = proxied.test_client()
    page = client.get(f"/enroll/{token}", headers=PROXIED).get_data(as_text=True)
    match = CSRF_PATTERN.search(page)
    assert match
    enrolled = client.post(f"/enroll/{token}", data={"csrf_token": match.group(1)}, headers=PROXIED)
    assert enrolled.status_code == 302
    device = [c for c in enrolled.headers.getlist("Set-Cookie") if c.startswith("kiosk_device=")]
    assert device and "Secure" in device[0] and "HttpOnly" in device[0]
    # The browser sends the secure cookie back over https: the kiosk taps.
    idle = client.get("/desk/", headers=PROXIED, base_url="https://localhost")
    page = idle.get_data(as_text=True)
    assert idle.status_code == 200 and "start_token" in page
    tapped = client.post(
        "/desk/start",
        data={**start_fields(page), "channel": "in_person"},
        headers={**PROXIED, "Origin": "null", "Sec-Fetch-Site": "same-origin"},
        base_url="https://localhost",
    )
    assert tapped.status_code == 302
    assert len(encounters(proxied)) == 1


def test_the_client_address_comes_from_the_trusted_proxy_only(make_app: Any, district: Any) -> None:
    """Throttling counts the address the proxy saw; without a proxy, the header is ignored."""
    behind = make_app(
        BASE_URL="https://kiosk.district.test", PROXY_HOPS=1, SIGNIN_FAILURES_ALLOWED=2
    )
    client = behind.test_client()
    for _ in range(2 * 5):  # the address allowance is five emails' worth
        headers = {**PROXIED, "X-Forwarded-For": "198.51.100.7"}
        page = client.get("/login", headers=headers).get_data(as_text=True)
        token = CSRF_PATTERN.search(page)
        assert token
        email = f"nobody{_}@district.test"
        client.post(
            "/login",
            data={"csrf_token": token.group(1), "email": email, "password": "x"},
            headers=headers,
        )
    refused = sign_in(behind.test_client(), {**PROXIED, "X-Forwarded-For": "198.51.100.7"})
    assert refused.status_code == 429
    other = sign_in(behind.test_client(), {**PROXIED, "X-Forwarded-For": "198.51.100.8"})
    assert other.status_code == 302

    direct = make_app(SIGNIN_FAILURES_ALLOWED=2)  # no proxy: X-Forwarded-For is anyone's
    client = direct.test_client()
    for i in range(2 * 5):
        page = client.get("/login", headers={"X-Forwarded-For": f"203.0.113.{i}"})
        token = CSRF_PATTERN.search(page.get_data(as_text=True))
        assert token
        client.post(
            "/login",
            data={"csrf_token": token.group(1), "email": f"n{i}@district.test", "password": "x"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        )
    assert sign_in(direct.test_client(), {"X-Forwarded-For": "203.0.113.99"}).status_code == 429


def test_no_hsts_on_a_plain_http_demo(app: Flask) -> None:
    assert "Strict-Transport-Security" not in app.test_client().get("/login").headers
