"""The one place that decides access: decorators for kiosks and signed-in people."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select

from kiosk import audit, webdb
from kiosk.auth import api_tokens, sessions
from kiosk.auth.devices import device_kiosk, usable
from kiosk.clock import now_utc
from kiosk.models import Kiosk, RoleGrant, User

DEVICE_COOKIE = "kiosk_device"
F = TypeVar("F", bound=Callable[..., Any])


NO_LONGER_SET_UP = "This device is no longer set up."


def current_kiosk() -> Kiosk | None:
    if "kiosk" not in g:
        found = device_kiosk(webdb.session(), request.cookies.get(DEVICE_COOKIE))
        usable_now = found is not None and usable(found, now_utc())
        g.kiosk = found if usable_now else None
        # A device that was a kiosk (revoked, or unused too long) is told so, calmly.
        g.kiosk_withdrawn = found is not None and not usable_now
    return g.kiosk


def not_a_kiosk() -> Any:
    """The answer to a device that is not (or no longer) a kiosk; neutral words only."""
    current_kiosk()
    if g.get("kiosk_withdrawn"):
        if request.path.endswith(".json"):
            return jsonify(open=False, set_up=False, message=NO_LONGER_SET_UP), 403
        return render_template("desk/no_longer_set_up.html"), 403
    return render_template("desk/not_a_kiosk.html"), 403


def kiosk_required(view: F) -> F:
    """Serve the view only to an enrolled kiosk; anything else sees 'not a kiosk'."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_kiosk() is None:
            return not_a_kiosk()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _signed_in() -> sessions.Found | None:
    """The live server-side session the cookie names, if any (a read)."""
    if "signed_in" not in g:
        token = session.get(sessions.SESSION_KEY)
        found = None
        if isinstance(token, str) and token:
            lifetimes = sessions.Lifetimes.from_settings(current_app.config)
            found = sessions.find(webdb.session(), token, lifetimes, now_utc())
        g.signed_in = found
    found_now: sessions.Found | None = g.signed_in
    return found_now


def current_user() -> User | None:
    found = _signed_in()
    return found.user if found is not None else None


def keep_signed_in() -> None:
    """Before each request: forget a session that has ended, and note activity on a live
    one (written at most once a minute, before the view takes any write lock)."""
    if request.endpoint == "static" or sessions.SESSION_KEY not in session:
        return
    found = _signed_in()
    if found is None:
        session.pop(sessions.SESSION_KEY, None)
    elif found.stale:
        with webdb.unit_of_work() as db:
            sessions.touch(db, found.session_id, now_utc())


def grants(user: User) -> list[RoleGrant]:
    return list(webdb.session().scalars(select(RoleGrant).where(RoleGrant.user_id == user.id)))


# Who may do what, and nothing else: an action missing here is refused to everyone.
# A grant covers its school, or every school when it names none.
OFFICE = "office"  # sign in to the office pages at all
ADMIN = "admin"  # configuration and people: no record content
ACCOUNT = "account"  # one's own sign-in settings (the second factor)
API_READ = "api.read"  # read records through /api/v1 with a bearer token
ACTIONS: dict[str, frozenset[str]] = {
    OFFICE: frozenset({"designee", "counsel", "reviewer", "admin"}),
    ACCOUNT: frozenset({"designee", "counsel", "reviewer", "admin"}),
    # Record content: names, free text, photos.
    "encounter.read": frozenset({"designee", "counsel", "reviewer"}),
    "encounter.acknowledge": frozenset({"designee", "counsel"}),
    "encounter.message_desk": frozenset({"designee", "counsel"}),
    "encounter.confirm_document": frozenset({"designee", "counsel"}),
    "encounter.record": frozenset({"designee", "counsel"}),
    "encounter.resolve": frozenset({"designee", "counsel"}),
    # Counsel's privileged notes on an encounter: read and written by counsel alone.
    "encounter.privileged_note": frozenset({"counsel"}),
    # A legal hold keeps a record past the retention period: counsel's decision alone.
    "retention.hold": frozenset({"counsel"}),
    # Delivery: recipients, errors, "retry now", waiting counts on /healthz.
    "outbox.read": frozenset({"designee", "admin"}),
    "outbox.retry": frozenset({"designee", "admin"}),
    "delivery.details": frozenset({"designee", "admin"}),
    ADMIN: frozenset({"admin"}),
    # Script versions: their words are no record content. Those who read records can read
    # the version an encounter showed; admins edit (ADMIN); counsel approves.
    "script.read": frozenset({"designee", "counsel", "reviewer", "admin"}),
    "script.draft": frozenset({"counsel", "admin"}),  # take up the shipped pack as a draft
    "script.approve": frozenset({"counsel"}),
    # FERPA student files: district officials read them and match named people to students
    # (a records task; the encounter itself stays unchanged). Only counsel records that a
    # court or agency ordered non-disclosure.
    "ferpa.read": frozenset({"counsel", "reviewer"}),
    "ferpa.record": frozenset({"counsel", "reviewer"}),
    "ferpa.nondisclosure": frozenset({"counsel"}),
    # The read-only API, with a bearer token; its scope is the schools of these grants.
    API_READ: api_tokens.API_ROLES,
}

# Roles, for any school, that may not sign in with a password alone: counsel and admins
# reach the most (every record, or the district's configuration).
SECOND_FACTOR_ROLES = frozenset({"counsel", "admin"})

ANY_SCHOOL = -1  # "for at least one school": a page that lists only what the user may see


def may(user: User | None, action: str, school_id: int | None = ANY_SCHOOL) -> bool:
    """Say whether the user may take the action for the school (deny by default).

    school_id ANY_SCHOOL asks "for at least one school"; None asks "district-wide".
    """
    roles = ACTIONS.get(action)
    if user is None or roles is None:
        return False
    for grant in grants(user):
        if grant.role not in roles:
            continue
        if school_id == ANY_SCHOOL or grant.school_id is None or grant.school_id == school_id:
            return True
    return False


def second_factor_required(roles: set[str]) -> bool:
    """Say whether a person holding these roles must use a second factor to sign in."""
    return bool(roles & SECOND_FACTOR_ROLES)


def schools_for(user: User, action: str) -> set[int] | None:
    """The schools where the user may take the action; None means every school."""
    roles = ACTIONS.get(action, frozenset())
    ids = {g.school_id for g in grants(user) if g.role in roles}
    return None if None in ids else {i for i in ids if i is not None}


def requires(action: str) -> Callable[[F], F]:
    """Serve the view only to a signed-in user who may take the action for some school; the
    view then asks may() for the one school it acts on."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not may(user, action):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def api_refusal(status: int, error: str, message: str) -> Any:
    """A JSON refusal; a 401 names the scheme to use (RFC 6750)."""
    response = jsonify(error=error, message=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer realm="api", error="{error}"'
    return response


def api_user() -> User:
    """The token holder of a view behind @token_required."""
    user: User | None = g.get("api_user")
    if user is None:
        abort(401)
    return user


def token_required(
    action: str,
    subject: Callable[..., str],
    details: Callable[[], dict[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Serve the view only to a live bearer token whose active holder may take the action for
    some school (401 for a missing, wrong or revoked token, or a disabled holder; 403 when the
    holder no longer holds a role that may). Each use is recorded before the view reads:
    who, which token, and the resource, from subject(**view_args), with details() added
    (ids and categories only). No cookie is read."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                return api_refusal(401, "invalid_request", "Send a bearer token.")
            row = api_tokens.find(webdb.session(), value.strip())
            if row is None:
                return api_refusal(401, "invalid_token", "This token does not work.")
            user = row.user
            if not may(user, action):
                return api_refusal(
                    403, "insufficient_scope", "This token's holder may not read records."
                )
            resource = subject(**kwargs)  # read before the write lock is taken
            now = now_utc()
            with webdb.unit_of_work() as db:
                if not api_tokens.used(db, row.id, now):
                    # Revoked since it was found: nothing was read, and nothing is recorded.
                    return api_refusal(401, "invalid_token", "This token does not work.")
                audit.record(
                    db,
                    current_app.config["AUDIT_KEY"],
                    now,
                    actor=f"user:{user.public_id}",
                    action=action,
                    subject=resource,
                    details={
                        **(details() if details is not None else {}),
                        "api_key": row.id,
                        "endpoint": request.endpoint,
                    },
                )
            g.api_user = user
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def from_loopback() -> bool:
    """True if the request's peer (not a forwarded header) is this machine."""
    try:
        address = ipaddress.ip_address((request.remote_addr or "").split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def can_view_delivery_details() -> bool:
    """Waiting counts and per-contact delivery problems: for outbox staff, or this machine."""
    return from_loopback() or may(current_user(), "delivery.details")


def demo_only() -> None:
    if not current_app.config["DEMO"]:
        abort(404)
