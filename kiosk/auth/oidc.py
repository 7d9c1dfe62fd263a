"""Sign-in with the district's identity provider (OpenID Connect, through authlib).

The provider proves who the person is; this app still decides what they may do. A verified
email from the provider is matched (case-insensitively: emails are kept in lower case) to an
account that already exists here and is active; no account is created and no role comes
from the provider.

The sign-in page's button POSTs (with its CSRF token) to /login/oidc, which redirects to the
provider with a random state, a nonce and a PKCE S256 challenge, kept for an hour in the
signed session cookie. /login/oidc/callback takes them out once (a replayed or forged
callback finds nothing), exchanges the code with the client secret and the PKCE verifier,
and checks the ID token: its signature with the keys the provider publishes, its issuer
(the one configured, also named by the discovery document), audience, nonce and expiry.

Every refusal logs one line with its reason, never an email, a code or a token, and shows
the sign-in page with a calm sentence; nothing is signed in."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from flask import abort, current_app, flash, redirect, request, session, url_for
from joserfc.errors import JoseError
from sqlalchemy import select
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.auth.forms import EmptyForm
from kiosk.auth.signin import first_factor_passed, safe_next
from kiosk.models import User
from kiosk.security import allow_form_action

log = logging.getLogger(__name__)

NAME = "district"
CALLBACK_PATH = "/login/oidc/callback"
# How this app proves itself to the provider's token endpoint (a method's name).
CLIENT_AUTHENTICATION = "client_secret_basic"
SCOPE = "openid email profile"
WELL_KNOWN = "/.well-known/openid-configuration"
FORM_PREFIX = "oidc"

NOT_SET_UP = "This account is not set up for the office. Ask the district's administrator."
CANCELLED = "Sign-in with the identity provider was cancelled. Nothing was signed in."
START_AGAIN = "That sign-in could not be finished. Start again."
NOT_FINISHED = (
    "Sign-in with the identity provider did not finish. Try again, or sign in with a password."
)
UNREACHABLE = (
    "The identity provider could not be reached. Try again in a minute, or sign in with a password."
)
# What a provider's error code may look like in a log line (it comes from the URL).
ERROR_CODE = re.compile(r"^[a-z_]{1,40}$")


class ProviderProblem(Exception):
    """The provider cannot be used right now; the reason is safe to log."""


@dataclass(frozen=True)
class Button:
    """The sign-in page's button: its words, its form (a CSRF token) and where it posts."""

    label: str
    form: EmptyForm
    action: str


def enabled() -> bool:
    return bool(current_app.config.get("OIDC_ISSUER"))


def discovery_url(setting: str) -> str:
    """KIOSK_OIDC_ISSUER may be the issuer or its discovery document's URL."""
    setting = setting.rstrip("/")
    return setting if setting.endswith(WELL_KNOWN) else setting + WELL_KNOWN


def expected_issuer(setting: str) -> str:
    """The issuer whose discovery document is at that URL (OpenID Connect Discovery 4)."""
    return discovery_url(setting)[: -len(WELL_KNOWN)]


def redirect_uri() -> str:
    """Built from KIOSK_BASE_URL, the address people use: behind the HTTPS proxy it is the
    https:// address registered with the provider, whatever the proxy passes on."""
    return str(current_app.config["BASE_URL"]) + CALLBACK_PATH


def client() -> FlaskOAuth2App:
    """The app's one provider client; the discovery document and keys are read on first use
    and kept (the keys are read again when a token names a key not seen yet)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    found: FlaskOAuth2App | None = app.extensions.get("kiosk_oidc")
    if found is None:
        config = app.config
        found = OAuth(app).register(
            NAME,
            client_id=config["OIDC_CLIENT_ID"],
            client_secret=config["OIDC_CLIENT_SECRET"],
            server_metadata_url=discovery_url(config["OIDC_ISSUER"]),
            client_kwargs={
                "scope": SCOPE,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": CLIENT_AUTHENTICATION,
                "default_timeout": (config["HTTP_CONNECT_TIMEOUT"], config["HTTP_READ_TIMEOUT"]),
            },
        )
        found = app.extensions.setdefault("kiosk_oidc", found)
    return found


def metadata(provider: FlaskOAuth2App) -> dict[str, Any]:
    """The provider's discovery document, once it is known to be the configured issuer's."""
    try:
        found: dict[str, Any] = provider.load_server_metadata()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderProblem(f"discovery document unavailable ({type(exc).__name__})") from exc
    issuer = str(found.get("issuer") or "").rstrip("/")
    if issuer != expected_issuer(current_app.config["OIDC_ISSUER"]).rstrip("/"):
        raise ProviderProblem("discovery document names another issuer")
    if not found.get("authorization_endpoint") or not found.get("token_endpoint"):
        raise ProviderProblem("discovery document lacks its endpoints")
    return found


def button(next_url: str | None) -> Button | None:
    """The button for the sign-in page, or None when no provider is set up. The page's
    form-action lets the button's redirect reach the provider's sign-in page."""
    if not enabled():
        return None
    allow_form_action(current_app.config["OIDC_ISSUER"])
    known = current_app.extensions.get("kiosk_oidc")
    endpoint = known.server_metadata.get("authorization_endpoint") if known else None
    if endpoint:
        allow_form_action(str(endpoint))
    action = url_for("auth.oidc_start", next=next_url) if next_url else url_for("auth.oidc_start")
    return Button(current_app.config["OIDC_LABEL"], EmptyForm(prefix=FORM_PREFIX), action)


def refuse(reason: str, message: str, next_url: str | None) -> Response:
    """One log line (the reason, nothing the person or the provider sent) and the sign-in
    page with a calm sentence."""
    log.warning("identity provider sign-in refused: %s", reason)
    flash(message, "warning")
    target = url_for("auth.login", next=next_url) if next_url else url_for("auth.login")
    return redirect(target)


def start() -> Response:
    """POST /login/oidc: off to the provider with state, nonce and a PKCE challenge."""
    if not enabled():
        abort(404)
    next_url = request.args.get("next")
    kept = safe_next(next_url) if next_url else None
    if not EmptyForm(prefix=FORM_PREFIX).validate_on_submit():
        return refuse("sign-in form incomplete", START_AGAIN, kept)
    provider = client()
    try:
        metadata(provider)
        found = provider.create_authorization_url(redirect_uri())
    except ProviderProblem as exc:
        return refuse(str(exc), UNREACHABLE, kept)
    url = found.pop("url")
    provider.save_authorize_data(redirect_uri=redirect_uri(), next=kept, **found)
    return redirect(url)


def email_of(
    claims: Mapping[str, Any], domains: tuple[str, ...], trust_directory: bool
) -> tuple[str | None, str]:
    """The verified email the ID token names, in lower case, or None and why not.

    `email_verified` must be true. With KIOSK_OIDC_TRUST_DIRECTORY_EMAIL (a single
    organisation's directory, such as Microsoft Entra ID with the district's own tenant,
    whose addresses only its administrators set), a token without `email_verified` is
    accepted and `preferred_username` stands in for a missing `email`; a false
    `email_verified` is refused all the same."""
    email = claims.get("email")
    if not email and trust_directory:
        email = claims.get("preferred_username")
    if not isinstance(email, str) or email.count("@") != 1 or len(email) > 254:
        return None, "no email in the ID token"
    verified = claims.get("email_verified")
    if isinstance(verified, str):
        verified = {"true": True, "false": False}.get(verified.strip().lower(), verified)
    if verified is not True and not (trust_directory and verified is None):
        return None, "email not verified by the provider"
    email = email.strip().lower()
    if domains and email.rsplit("@", 1)[1] not in domains:
        return None, "email domain not allowed"
    return email, ""


def with_userinfo(claims: Mapping[str, Any], userinfo: Mapping[str, Any]) -> dict[str, Any]:
    """The ID token's claims with the email (and whether it is verified) from the userinfo
    endpoint, which must speak of the same person (OpenID Connect Core 5.3.2)."""
    if userinfo.get("sub") != claims.get("sub"):
        raise ValueError("the userinfo answer names another subject")
    merged = dict(claims)
    for name in ("email", "email_verified"):
        merged.pop(name, None)
        if name in userinfo:
            merged[name] = userinfo[name]
    return merged


def callback() -> Response:
    """GET /login/oidc/callback: the provider's answer, checked, then the person's session."""
    if not enabled():
        abort(404)
    provider = client()
    state = request.args.get("state") or ""
    data: dict[str, Any] | None = None
    if state:
        data = provider.framework.get_state_data(session, state)
        # Once only: the same answer again (or a stolen one) finds nothing.
        provider.framework.clear_state_data(session, state)
    if not data:
        return refuse("state unknown, used or expired", START_AGAIN, None)
    next_url = data.get("next")
    error = request.args.get("error")
    if error:
        code = error if ERROR_CODE.match(error) else "an unknown error"
        message = CANCELLED if error == "access_denied" else NOT_FINISHED
        return refuse(f"the provider answered {code}", message, next_url)
    try:
        found = metadata(provider)
    except ProviderProblem as exc:
        return refuse(str(exc), UNREACHABLE, next_url)
    answered_by = request.args.get("iss")
    if answered_by is not None and answered_by != found["issuer"]:
        return refuse("the answer names another issuer", NOT_FINISHED, next_url)
    code = request.args.get("code")
    if not code:
        return refuse("the answer carries no code", NOT_FINISHED, next_url)
    try:
        token = provider.fetch_access_token(
            redirect_uri=data["redirect_uri"], code=code, code_verifier=data["code_verifier"]
        )
    except OAuthError as exc:
        reason = exc.error if ERROR_CODE.match(str(exc.error or "")) else "an error"
        return refuse(f"the code exchange was refused ({reason})", NOT_FINISHED, next_url)
    except (requests.RequestException, ValueError) as exc:
        return refuse(f"token endpoint unavailable ({type(exc).__name__})", UNREACHABLE, next_url)
    try:
        claims = provider.parse_id_token(token, nonce=data["nonce"])
    except (JoseError, requests.RequestException, ValueError, KeyError) as exc:
        return refuse(f"ID token refused ({type(exc).__name__})", NOT_FINISHED, next_url)
    if claims is None:
        return refuse("no ID token", NOT_FINISHED, next_url)
    if not claims.get("email") and found.get("userinfo_endpoint"):
        # Some providers keep the email for their userinfo endpoint, not the ID token.
        try:
            claims = with_userinfo(claims, provider.userinfo(token=token))
        except (OAuthError, requests.RequestException, ValueError) as exc:
            return refuse(f"userinfo unavailable ({type(exc).__name__})", NOT_FINISHED, next_url)
    config = current_app.config
    email, why_not = email_of(
        claims, tuple(config["OIDC_ALLOWED_DOMAINS"]), bool(config["OIDC_TRUST_DIRECTORY_EMAIL"])
    )
    if email is None:
        return refuse(why_not, NOT_SET_UP, next_url)
    user = webdb.session().scalar(select(User).where(User.email == email))
    if user is None:
        return refuse("no account has this email", NOT_SET_UP, next_url)
    if not user.active:
        return refuse("the account is disabled", NOT_SET_UP, next_url)
    return first_factor_passed(user, next_url, method="oidc")
