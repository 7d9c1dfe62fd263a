"""Sign-in with the district's identity provider: a real OpenID Connect provider on loopback
(oidc-provider under node), the app through the Flask test client, the person at the
provider played by a plain HTTP client posting its sign-in form."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.auth.oidc import (
    CANCELLED,
    NOT_FINISHED,
    NOT_SET_UP,
    START_AGAIN,
    email_of,
    with_userinfo,
)
from kiosk.config import ConfigError, check_oidc
from kiosk.db import writing
from kiosk.models import User
from kiosk.webdb import database
from tests.oidc.support import Provider, running_provider, sign_in_at_provider
from tests.test_policy import create_user

DANA = "dana.reyes@demo-district.example"  # the demo district's designee
STRANGER = "stranger@demo-district.example"  # no account here
JORDAN = "jordan.kim@demo-district.example"  # has an account; the provider has not verified
LEFT = "left.school@demo-district.example"  # has an account, disabled
MIXED = "Dana.Reyes@Demo-District.example"  # Dana, as another directory spells her
ACCOUNTS = [
    {"email": DANA, "email_verified": True, "name": "Dana Reyes"},
    {"email": STRANGER, "email_verified": True},
    {"email": JORDAN, "email_verified": False},
    {"email": LEFT, "email_verified": True},
    {"email": MIXED, "email_verified": True},
]
CALLBACK = "http://kiosk.test/login/oidc/callback"
HTTPS_SITE = "https://kiosk.district.test"
PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
TOKEN = re.compile(r'name="oidc-csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """One provider for the module; the app is registered with both its addresses."""
    redirects = [CALLBACK, HTTPS_SITE + "/login/oidc/callback"]
    with running_provider(tmp_path_factory.mktemp("oidc"), redirects, ACCOUNTS) as running:
        yield running


@pytest.fixture
def oidc_app(make_app: Any, district: Any, provider: Provider) -> Flask:
    app: Flask = make_app(**provider.settings())
    return app


def go_to_provider(
    client: FlaskClient, next_url: str | None = None, headers: dict[str, str] | None = None
) -> str:
    """Open the sign-in page and press the provider's button; return where it leads."""
    query = f"?next={quote(next_url)}" if next_url else ""
    page = client.get("/login" + query, headers=headers).get_data(as_text=True)
    match = TOKEN.search(page)
    assert match, "no button for the identity provider on the sign-in page"
    answer = client.post(
        "/login/oidc" + query, data={"oidc-csrf_token": match.group(1)}, headers=headers
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return answer.headers["Location"]


def come_back(client: FlaskClient, callback: str, headers: dict[str, str] | None = None) -> Any:
    """The browser arriving back at the app from the provider."""
    parts = urlsplit(callback)
    return client.get(f"{parts.path}?{parts.query}", headers=headers)


def sign_in(client: FlaskClient, email: str, next_url: str | None = None) -> Any:
    return come_back(client, sign_in_at_provider(go_to_provider(client, next_url), email))


def refused_with(client: FlaskClient, answer: Any, message: str) -> None:
    """Back on the sign-in page with the sentence, and nothing signed in."""
    assert answer.status_code == 302
    assert urlsplit(answer.headers["Location"]).path == "/login"
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert message.replace("'", "&#39;") in page
    assert client.get("/office/").status_code == 302  # still sent to sign in


def test_a_known_person_signs_in_and_reaches_the_office(
    oidc_app: Flask, provider: Provider
) -> None:
    client = oidc_app.test_client()
    url = go_to_provider(client)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(provider.issuer + "/auth?")
    assert query["client_id"] == [provider.client_id]
    assert query["redirect_uri"] == [CALLBACK]
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["state"] and query["nonce"]
    assert "openid" in query["scope"][0].split()
    answer = come_back(client, sign_in_at_provider(url, DANA))
    assert answer.status_code == 302 and answer.headers["Location"] == "/office/"
    office = client.get("/office/")
    assert office.status_code == 200
    assert "Open encounters" in office.get_data(as_text=True)


def test_the_email_is_matched_whatever_its_case(oidc_app: Flask) -> None:
    client = oidc_app.test_client()
    assert sign_in(client, MIXED).headers["Location"] == "/office/"
    assert client.get("/office/").status_code == 200


def test_an_email_given_only_at_the_userinfo_endpoint_is_read_there(
    make_app: Any, district: Any, tmp_path: Path
) -> None:
    accounts = [{"email": DANA, "email_verified": True}, {"email": JORDAN}]
    with running_provider(tmp_path, [CALLBACK], accounts, email_in_userinfo_only=True) as other:
        app = make_app(**other.settings())
        client = app.test_client()
        assert sign_in(client, DANA).headers["Location"] == "/office/"
        other_client = app.test_client()  # not verified there either: refused
        refused_with(other_client, sign_in(other_client, JORDAN), NOT_SET_UP)


def test_userinfo_about_another_person_is_not_taken() -> None:
    with pytest.raises(ValueError):
        with_userinfo({"sub": "a"}, {"sub": "b", "email": DANA, "email_verified": True})
    merged = with_userinfo({"sub": "a", "email_verified": True}, {"sub": "a", "email": DANA})
    assert merged == {"sub": "a", "email": DANA}  # verified is not borrowed from the token


def test_an_email_with_no_account_here_is_refused_calmly_and_logged_without_it(
    oidc_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = oidc_app.test_client()
    with caplog.at_level(logging.WARNING, logger="kiosk.auth.oidc"):
        answer = sign_in(client, STRANGER)
    refused_with(client, answer, NOT_SET_UP)
    lines = [r.getMessage() for r in caplog.records if r.name == "kiosk.auth.oidc"]
    assert lines == ["identity provider sign-in refused: no account has this email"]
    assert "stranger" not in caplog.text
    with database(oidc_app).session_factory() as db:
        assert db.scalar(select(User).where(User.email == STRANGER)) is None  # none created


def test_an_email_the_provider_has_not_verified_is_refused(
    oidc_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = oidc_app.test_client()
    with caplog.at_level(logging.WARNING, logger="kiosk.auth.oidc"):
        answer = sign_in(client, JORDAN)
    refused_with(client, answer, NOT_SET_UP)
    assert "email not verified by the provider" in caplog.text


def test_a_disabled_account_is_refused(oidc_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    create_user(oidc_app, LEFT, "designee", "Lincoln Elementary School")
    with writing(), database(oidc_app).session_factory() as db, db.begin():
        user = db.scalar(select(User).where(User.email == LEFT))
        assert user is not None
        user.active = False
    client = oidc_app.test_client()
    with caplog.at_level(logging.WARNING, logger="kiosk.auth.oidc"):
        answer = sign_in(client, LEFT)
    refused_with(client, answer, NOT_SET_UP)
    assert "the account is disabled" in caplog.text


def test_a_domain_not_on_the_list_is_refused(
    make_app: Any, district: Any, provider: Provider
) -> None:
    app = make_app(**provider.settings(OIDC_ALLOWED_DOMAINS=("other-district.example",)))
    client = app.test_client()
    answer = sign_in(client, DANA)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    refused_with(client, answer, NOT_SET_UP)


def test_a_cancelled_sign_in_at_the_provider_says_so(
    oidc_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = oidc_app.test_client()
    callback = sign_in_at_provider(go_to_provider(client, "/office/outbox"), DANA, cancel=True)
    assert parse_qs(urlsplit(callback).query)["error"] == ["access_denied"]
    with caplog.at_level(logging.WARNING, logger="kiosk.auth.oidc"):
        answer = come_back(client, callback)
    assert answer.headers["Location"] == "/login?next=/office/outbox"  # next still kept
    refused_with(client, answer, CANCELLED)
    assert "the provider answered access_denied" in caplog.text


def test_a_changed_state_is_refused(oidc_app: Flask) -> None:
    client = oidc_app.test_client()
    callback = sign_in_at_provider(go_to_provider(client), DANA)
    forged = re.sub(r"state=[^&]+", "state=forged", callback)
    refused_with(client, come_back(client, forged), START_AGAIN)
    # The real answer still works once: the forged one used up nothing.
    assert come_back(client, callback).headers["Location"] == "/office/"


def test_an_id_token_for_another_nonce_is_refused(
    oidc_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """The nonce the app kept must be the one in the ID token (a token from another sign-in
    is refused)."""
    client = oidc_app.test_client()
    callback = sign_in_at_provider(go_to_provider(client), DANA)
    with client.session_transaction() as session:
        (key,) = [k for k in session if k.startswith("_state_")]
        kept = session[key]
        kept["data"]["nonce"] = "another-sign-in"
        session[key] = kept
    with caplog.at_level(logging.WARNING, logger="kiosk.auth.oidc"):
        answer = come_back(client, callback)
    refused_with(client, answer, NOT_FINISHED)
    assert "ID token refused (InvalidClaimError)" in caplog.text


def test_an_id_token_not_signed_with_the_providers_keys_is_refused(
    oidc_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """The app checks the signature with the keys it holds for the provider: here another
    key under the same name, so the provider's real signature does not match."""
    from joserfc.jwk import RSAKey

    client = oidc_app.test_client()
    callback = sign_in_at_provider(go_to_provider(client), DANA)
    impostor = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})
    oidc_app.extensions["kiosk_oidc"].server_metadata["jwks"] = {
        "keys": [impostor.as_dict(private=False)]
    }
    with caplog.at_level(logging.WARNING, logger="kiosk.auth.oidc"):
        answer = come_back(client, callback)
    refused_with(client, answer, NOT_FINISHED)
    assert "ID token refused (BadSignatureError)" in caplog.text


def test_a_replayed_answer_is_refused_in_the_same_browser_and_in_another(
    oidc_app: Flask,
) -> None:
    client = oidc_app.test_client()
    callback = sign_in_at_provider(go_to_provider(client), DANA)
    assert come_back(client, callback).headers["Location"] == "/office/"
    again = come_back(client, callback)
    assert urlsplit(again.headers["Location"]).path == "/login"
    other = oidc_app.test_client()
    refused_with(other, come_back(other, callback), START_AGAIN)


def test_the_page_asked_for_is_kept_through_the_provider(oidc_app: Flask) -> None:
    client = oidc_app.test_client()
    assert client.get("/office/outbox").headers["Location"] == "/login?next=/office/outbox"
    answer = sign_in(client, DANA, next_url="/office/outbox")
    assert answer.headers["Location"] == "/office/outbox"
    assert client.get("/office/outbox").status_code == 200


def test_a_next_target_on_another_site_is_not_followed(oidc_app: Flask) -> None:
    client = oidc_app.test_client()
    answer = sign_in(client, DANA, next_url="https://elsewhere.example/")
    assert answer.headers["Location"] == "/office/"


def test_behind_the_https_proxy_the_provider_is_given_the_https_address(
    make_app: Any, district: Any, provider: Provider
) -> None:
    app = make_app(**provider.settings(), BASE_URL=HTTPS_SITE, PROXY_HOPS=1, SECURE_COOKIES=True)
    client = app.test_client()
    url = go_to_provider(client, headers=PROXIED)
    redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"]
    assert redirect_uri == [HTTPS_SITE + "/login/oidc/callback"]
    callback = sign_in_at_provider(url, DANA)
    assert callback.startswith(HTTPS_SITE + "/login/oidc/callback?code=")
    answer = come_back(client, callback, headers=PROXIED)
    assert answer.headers["Location"] == "/office/"
    assert "Secure" in answer.headers["Set-Cookie"]
    assert client.get("/office/", headers=PROXIED).status_code == 200


def test_the_sign_in_page_lets_its_button_lead_to_the_provider(
    oidc_app: Flask, provider: Provider
) -> None:
    page = oidc_app.test_client().get("/login")
    assert "Sign in with the district account" in page.get_data(as_text=True)
    policy = page.headers["Content-Security-Policy"]
    assert f"form-action 'self' {provider.issuer};" in policy


def test_without_settings_there_is_no_button_and_no_route(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/login")
    assert "oidc" not in page.get_data(as_text=True)
    assert "form-action 'self';" in page.headers["Content-Security-Policy"]
    assert client.get("/login/oidc/callback?code=x&state=y").status_code == 404
    from tests.conftest import csrf_token

    token = csrf_token(client, "/login")
    assert client.post("/login/oidc", data={"csrf_token": token}).status_code == 404


def test_an_unreachable_provider_is_said_calmly(
    make_app: Any, district: Any, tmp_path: Path
) -> None:
    from tests.conftest import free_port

    app = make_app(
        OIDC_ISSUER=f"http://127.0.0.1:{free_port()}",
        OIDC_CLIENT_ID="front-office",
        OIDC_CLIENT_SECRET="unused-secret",
        HTTP_CONNECT_TIMEOUT=1.0,
    )
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    match = TOKEN.search(page)
    assert match
    answer = client.post("/login/oidc", data={"oidc-csrf_token": match.group(1)})
    assert urlsplit(answer.headers["Location"]).path == "/login"
    assert "could not be reached" in client.get("/login").get_data(as_text=True)


SET_UP = {
    "OIDC_ISSUER": "https://accounts.google.com",
    "OIDC_CLIENT_ID": "front-office",
    "OIDC_CLIENT_SECRET": "very-secret-value",
    "OIDC_LABEL": "Sign in with Google",
    "OIDC_ALLOWED_DOMAINS": (),
    "OIDC_TRUST_DIRECTORY_EMAIL": False,
}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"OIDC_CLIENT_SECRET": ""}, "half set up: KIOSK_OIDC_CLIENT_SECRET missing"),
        ({"OIDC_ISSUER": "http://idp.example"}, "KIOSK_OIDC_ISSUER must be"),
        ({"OIDC_ISSUER": "accounts.google.com"}, "KIOSK_OIDC_ISSUER must be"),
        ({"OIDC_LABEL": "Sign in\nnow"}, "KIOSK_OIDC_LABEL must be"),
        ({"OIDC_ALLOWED_DOMAINS": ("not a domain",)}, "KIOSK_OIDC_ALLOWED_DOMAINS must"),
        ({"OIDC_TRUST_DIRECTORY_EMAIL": True}, "needs KIOSK_OIDC_ALLOWED_DOMAINS"),
        (
            {
                "OIDC_ISSUER": "https://login.microsoftonline.com/common/v2.0",
                "OIDC_TRUST_DIRECTORY_EMAIL": True,
                "OIDC_ALLOWED_DOMAINS": ("district.example",),
            },
            "the district's own tenant issuer",
        ),
    ],
)
def test_a_setting_that_cannot_work_is_named_and_the_secret_never(
    change: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        check_oidc({**SET_UP, **change})
    assert words in str(refused.value)
    assert "very-secret-value" not in str(refused.value)


def test_settings_that_work() -> None:
    entra = {
        **SET_UP,
        "OIDC_ISSUER": "https://login.microsoftonline.com/0b1c2d3e-aaaa-bbbb-cccc-000000000000/v2.0",
        "OIDC_ALLOWED_DOMAINS": ("district.example",),
        "OIDC_TRUST_DIRECTORY_EMAIL": True,
    }
    off = {key: "" for key in SET_UP}
    # Each is accepted: check_oidc returns without naming a problem.
    assert [check_oidc(settings) for settings in (SET_UP, off, entra)] == [None, None, None]


def test_the_settings_are_read_from_the_environment() -> None:
    from kiosk.config import load_settings

    settings = load_settings(
        {
            "KIOSK_OIDC_ISSUER": "https://accounts.google.com",
            "KIOSK_OIDC_ALLOWED_DOMAINS": "District.example, schools.district.example",
        },
        "/nonexistent",
    )
    assert settings["OIDC_ALLOWED_DOMAINS"] == ("district.example", "schools.district.example")
    assert settings["OIDC_LABEL"] == "Sign in with the district account"
    assert settings["OIDC_TRUST_DIRECTORY_EMAIL"] is False


@pytest.mark.parametrize(
    ("claims", "domains", "trust", "expected"),
    [
        ({"email": "A@District.example", "email_verified": True}, (), False, "a@district.example"),
        (
            {"email": "a@district.example", "email_verified": "true"},
            (),
            False,
            "a@district.example",
        ),
        ({"email": "a@district.example"}, (), False, None),
        ({"email": "a@district.example", "email_verified": False}, (), True, None),
        ({"email": "a@district.example", "email_verified": True}, ("other.example",), False, None),
        # Entra ID with the district's own tenant: no email_verified, maybe no email.
        ({"email": "a@district.example"}, ("district.example",), True, "a@district.example"),
        (
            {"preferred_username": "B@district.example"},
            ("district.example",),
            True,
            "b@district.example",
        ),
        ({"preferred_username": "B@district.example", "email_verified": True}, (), False, None),
        ({"email": "no-at-sign", "email_verified": True}, (), False, None),
    ],
)
def test_which_emails_are_taken(
    claims: dict[str, Any], domains: tuple[str, ...], trust: bool, expected: str | None
) -> None:
    assert email_of(claims, domains, trust)[0] == expected
