"""The one place that decides access: decorators for kiosks and signed-in people."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app, g, redirect, render_template, request, session, url_for
from sqlalchemy import select

from kiosk import webdb
from kiosk.auth import sessions
from kiosk.auth.devices import kiosk_for_device
from kiosk.clock import now_utc
from kiosk.models import Encounter, Kiosk, RoleGrant, User

DEVICE_COOKIE = "kiosk_device"
F = TypeVar("F", bound=Callable[..., Any])


def current_kiosk() -> Kiosk | None:
    if "kiosk" not in g:
        g.kiosk = kiosk_for_device(webdb.session(), request.cookies.get(DEVICE_COOKIE))
    return g.kiosk


def kiosk_required(view: F) -> F:
    """Serve the view only to an enrolled kiosk; anything else sees 'not a kiosk'."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_kiosk() is None:
            return render_template("desk/not_a_kiosk.html"), 403
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


def has_role(user: User, roles: tuple[str, ...], school_id: int | None = None) -> bool:
    """True if the user holds one of roles for the district, or for that school."""
    for grant in grants(user):
        if grant.role in roles and (grant.school_id is None or grant.school_id == school_id):
            return True
    return False


def login_required(*roles: str) -> Callable[[F], F]:
    """Require a signed-in user holding one of roles (for any school) to see the view."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if roles and not any(grant.role in roles for grant in grants(user)):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


OFFICE_ROLES = ("designee", "reviewer", "counsel", "admin")


# The delivery outbox (recipients, errors, "retry now") is for these roles.
OUTBOX_ROLES = ("admin", "designee")

# Photos of documents are served to these roles only (not to administrators).
PHOTO_ROLES = ("designee", "counsel", "reviewer")


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
    if from_loopback():
        return True
    user = current_user()
    return user is not None and any(grant.role in OUTBOX_ROLES for grant in grants(user))


def can_view_encounter(user: User, encounter: Encounter) -> bool:
    return has_role(user, OFFICE_ROLES, encounter.school_id)


def can_view_photos(user: User | None, encounter: Encounter) -> bool:
    return user is not None and has_role(user, PHOTO_ROLES, encounter.school_id)


def demo_only() -> None:
    if not current_app.config["DEMO"]:
        abort(404)
