"""CSRF on every form, a same-origin check on every change, a strict Content Security Policy
and safe headers on every response, and the proxy in front trusted only as far as told."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from kiosk.logs import redact

csrf = CSRFProtect()
log = logging.getLogger(__name__)

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HSTS = "max-age=31536000"
CROSS_SITE = "The form came from another site."


def init_app(app: Flask) -> None:
    hops = int(app.config.get("PROXY_HOPS", 0))
    if hops:
        # Only what the trusted proxies add is believed: the client address (throttling,
        # logs), the scheme (secure cookies, HSTS) and the host.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
    # Pages are sent with Referrer-Policy: no-referrer, so browsers send no Referer and
    # Flask-WTF's HTTPS Referer check would refuse every form. The tokens stay; the origin
    # check below takes the Referer check's place.
    app.config["WTF_CSRF_SSL_STRICT"] = False
    app.before_request(_no_nul_in_address)
    csrf.init_app(app)
    app.before_request(_same_origin)
    app.after_request(_headers)


def origin_of(url: str) -> str:
    """scheme://host[:port], lower case, without a default port."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is None or (scheme, port) in {("http", 80), ("https", 443)}:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _no_nul_in_address() -> None:
    """Refuse an address holding a NUL character: no id, page key or filter has one, and
    PostgreSQL cannot compare text with one (it would fail the request with a 500)."""
    if "\x00" in request.path:
        abort(404)
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        abort(400)


def _same_origin() -> None:
    """Refuse a change sent from another site.

    Browsers send Origin with every form; under Referrer-Policy no-referrer it is "null",
    and then Sec-Fetch-Site tells where the form came from. A request with neither (a
    script, an old browser) still needs its CSRF token.
    """
    if request.method not in UNSAFE_METHODS:
        return
    origin = request.headers.get("Origin", "").strip()
    if origin and origin != "null":
        if origin_of(origin) != origin_of(current_app.config["BASE_URL"]):
            raise CSRFError(CROSS_SITE)
        return
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if site and site not in {"same-origin", "none"}:
        raise CSRFError(CROSS_SITE)


def log_refused_form(error: CSRFError) -> None:
    """One line per refused form: why, and where; never the token."""
    log.warning(
        "form refused: %s %s %s",
        request.method,
        redact(request.path),
        error.description,
    )


def allow_form_action(origin: str) -> None:
    """Let this page's forms lead to one more origin: the sign-in button's POST is answered
    with a redirect to the identity provider, and browsers hold redirects of a form to the
    page's form-action too."""
    g.setdefault("form_action_origins", set()).add(origin_of(origin))


def _headers(response: Response) -> Response:
    csp = CSP
    extra = g.get("form_action_origins")
    if extra:
        csp = CSP.replace("form-action 'self'", " ".join(["form-action 'self'", *sorted(extra)]))
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Permissions-Policy"] = "geolocation=(), microphone=(), camera=(self)"
    if current_app.config["BASE_URL"].startswith("https://"):
        response.headers["Strict-Transport-Security"] = HSTS
    if not request.path.startswith("/static/"):
        # Nothing of an encounter may come back from a cache or the back button.
        response.headers["Cache-Control"] = "no-store"
    return response
