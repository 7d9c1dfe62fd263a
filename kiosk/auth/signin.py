"""What happens once a person has proven who they are, however they did it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, redirect, session, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from kiosk import audit, webdb
from kiosk.auth import second_factor, sessions
from kiosk.clock import now_utc
from kiosk.models import User

# Between the first factor and the code: the Flask (signed cookie) session holds only the
# person's id, where to go next and until when. It signs nobody in: the policy reads only
# sessions.SESSION_KEY, which is set once the code is right.
PENDING_KEY = "pending_signin"
PENDING_FOR = timedelta(minutes=5)
# Someone who gave an email no active account has: recorded without the email.
ANONYMOUS = "anonymous"


def actor(user: User) -> str:
    return f"user:{user.public_id}"


def record(
    db: Session,
    who: str,
    action: str,
    subject: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """One sign-in event in the audit chain, inside the caller's unit of work (the write the
    step already makes, so that recording adds no write of its own). Details never hold a
    password, a code, a token or an email."""
    audit.record(db, current_app.config["AUDIT_KEY"], now_utc(), who, action, subject, details)


def safe_next(target: str | None) -> str:
    """A local path to go on to after sign-in; anything else goes to the office."""
    if not target:
        return url_for("office.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("office.home")
    return target


def first_factor_passed(user: User, next_url: str | None, method: str = "password") -> Response:
    """Called once a password, or the district's identity provider, has proven who the user
    is (method says which: "password" or "oidc", for the audit log). Someone with a second
    factor is asked for a code; someone whose role requires one and who has none yet sets it
    up; anyone else is signed in and goes on to next_url."""
    if second_factor.enrolled(user):
        begin_pending(user, next_url, method)
        return redirect(url_for("auth.login_code"))
    if second_factor.required(webdb.session(), user.id):
        begin_pending(user, next_url, method)
        return redirect(url_for("auth.setup_code"))
    return start_session(user, next_url, method)


def _end_earlier_session() -> None:
    earlier = session.get(sessions.SESSION_KEY)
    if isinstance(earlier, str):
        with webdb.unit_of_work() as db:
            sessions.end(db, earlier)
    session.clear()


def begin_pending(user: User, next_url: str | None, method: str = "password") -> None:
    """Note who passed the first factor, for five minutes; whoever was signed in on this
    browser before is signed out now, not when the code is entered."""
    _end_earlier_session()
    session[PENDING_KEY] = {
        "user": user.id,
        "until": (now_utc() + PENDING_FOR).timestamp(),
        "next": safe_next(next_url),
        "method": method,
    }


def pending_user() -> User | None:
    """The person who passed the first factor in the last five minutes on this browser, if
    they are still active; None otherwise (and the stale note is dropped)."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    user_id, until = pending.get("user"), pending.get("until")
    if not isinstance(user_id, int) or not isinstance(until, int | float):
        session.pop(PENDING_KEY, None)
        return None
    if now_utc().timestamp() >= until:
        session.pop(PENDING_KEY, None)
        return None
    user = webdb.session().get(User, user_id)
    if user is None or not user.active:
        session.pop(PENDING_KEY, None)
        return None
    return user


def pending_next() -> str:
    pending = session.get(PENDING_KEY)
    target = pending.get("next") if isinstance(pending, dict) else None
    return safe_next(target if isinstance(target, str) else None)


def pending_method() -> str:
    """How the pending sign-in's first factor was passed ("password" or "oidc")."""
    pending = session.get(PENDING_KEY)
    method = pending.get("method") if isinstance(pending, dict) else None
    return method if method in ("password", "oidc") else "password"


def begin_session(user: User, method: str, second_factor_used: bool) -> None:
    """A new server-side session for the user; one this browser held before is ended, and
    so is a pending sign-in. The sign-in is recorded in the audit chain in the same unit of
    work that starts the session."""
    user_id, who = user.id, actor(user)
    earlier = session.get(sessions.SESSION_KEY)
    lifetimes = sessions.Lifetimes.from_settings(current_app.config)
    with webdb.unit_of_work() as db:
        if isinstance(earlier, str):
            sessions.end(db, earlier)
        token = sessions.begin(db, user_id, lifetimes, now_utc())
        record(
            db,
            who,
            "signin.success",
            who,
            {"method": method, "second_factor": second_factor_used},
        )
    session.clear()
    session[sessions.SESSION_KEY] = token


def start_session(user: User, next_url: str | None, method: str = "password") -> Response:
    """Sign the user in on this browser (no second factor) and go on to next_url."""
    begin_session(user, method, False)
    return redirect(safe_next(next_url))
