"""What happens once a person has proven who they are, however they did it."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, redirect, session, url_for
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.auth import sessions
from kiosk.clock import now_utc
from kiosk.models import User


def safe_next(target: str | None) -> str:
    """A local path to go on to after sign-in; anything else goes to the office."""
    if not target:
        return url_for("office.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("office.home")
    return target


def first_factor_passed(user: User, next_url: str | None) -> Response:
    """Called once a password, or the district's identity provider, has proven who the user
    is. Starts their session and goes on to next_url."""
    return start_session(user, next_url)


def start_session(user: User, next_url: str | None) -> Response:
    """A new server-side session for the user; one this browser held before is ended."""
    earlier = session.get(sessions.SESSION_KEY)
    lifetimes = sessions.Lifetimes.from_settings(current_app.config)
    with webdb.unit_of_work() as db:
        if isinstance(earlier, str):
            sessions.end(db, earlier)
        token = sessions.begin(db, user.id, lifetimes, now_utc())
    session.clear()
    session[sessions.SESSION_KEY] = token
    return redirect(safe_next(next_url))
