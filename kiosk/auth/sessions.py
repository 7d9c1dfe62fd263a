"""Signed-in sessions kept in the database, so that they hold across servers and end at once.

The browser's cookie carries only a random token; the row keeps a hash of it. Signing out
deletes the row, and so does disabling the person or changing their roles (a flush hook
below), so a copied cookie stops working everywhere. A session also ends after a while
without requests (idle) and some hours after sign-in (absolute), whatever happens.

Operations take a session and plain values, flush, and never commit."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, inspect, or_, select, update
from sqlalchemy.orm import Session

from kiosk.models import RoleGrant, SigninSession, User

# The Flask (cookie) session key that holds the token.
SESSION_KEY = "sid"
# last_seen_at is written at most this often, so reading pages does not write on every request.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    longest: timedelta

    @classmethod
    def from_settings(cls, config: Any) -> Lifetimes:
        return cls(
            idle=timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
            longest=timedelta(hours=config["SESSION_MAX_HOURS"]),
        )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _expired(lifetimes: Lifetimes, now: datetime) -> Any:
    return or_(
        SigninSession.last_seen_at <= now - lifetimes.idle,
        SigninSession.created_at <= now - lifetimes.longest,
    )


def begin(session: Session, user_id: int, lifetimes: Lifetimes, now: datetime) -> str:
    """Start a session for the user and return its token (for the cookie, never stored)."""
    session.execute(delete(SigninSession).where(_expired(lifetimes, now)))
    token = secrets.token_urlsafe(32)
    session.add(
        SigninSession(token_hash=_hash(token), user_id=user_id, created_at=now, last_seen_at=now)
    )
    session.flush()
    return token


def end(session: Session, token: str) -> None:
    """Sign out: the token is refused from now on, on every server."""
    session.execute(delete(SigninSession).where(SigninSession.token_hash == _hash(token)))


def end_all(session: Session, user_ids: set[int]) -> None:
    """End every session of these people."""
    if user_ids:
        session.execute(delete(SigninSession).where(SigninSession.user_id.in_(user_ids)))


@dataclass(frozen=True)
class Found:
    session_id: int
    user: User
    stale: bool  # last_seen_at is due to be written


def find(session: Session, token: str, lifetimes: Lifetimes, now: datetime) -> Found | None:
    """The live session the token names, and its (active) user; None if there is none."""
    row = session.execute(
        select(SigninSession, User)
        .join(User, User.id == SigninSession.user_id)
        .where(SigninSession.token_hash == _hash(token), User.active)
    ).first()
    if row is None:
        return None
    signed_in, user = row
    if now - signed_in.last_seen_at >= lifetimes.idle:
        return None
    if now - signed_in.created_at >= lifetimes.longest:
        return None
    return Found(signed_in.id, user, now - signed_in.last_seen_at >= TOUCH_EVERY)


def touch(session: Session, session_id: int, now: datetime) -> None:
    """Note a request (at most once per TOUCH_EVERY; a second server's touch changes nothing)."""
    session.execute(
        update(SigninSession)
        .where(SigninSession.id == session_id, SigninSession.last_seen_at <= now - TOUCH_EVERY)
        .values(last_seen_at=now)
    )


@event.listens_for(Session, "before_flush")
def _end_sessions_on_access_change(session: Session, _context: Any, _instances: Any) -> None:
    """Disabling a person, or granting or taking away a role, ends their sessions in the
    same transaction: whatever changed their access, they sign in again to get the new one."""
    users: set[int] = set()
    for obj in session.dirty:
        if isinstance(obj, User) and obj.id is not None:
            history = inspect(obj).attrs.active.history
            if history.has_changes() and not obj.active:
                users.add(obj.id)
        elif isinstance(obj, RoleGrant) and session.is_modified(obj):
            users.update(u for u in inspect(obj).attrs.user_id.history.sum() if u is not None)
            users.add(obj.user_id)
    for obj in list(session.new) + list(session.deleted):
        if isinstance(obj, RoleGrant):
            user_id = obj.user_id if obj.user_id is not None else getattr(obj.user, "id", None)
            if user_id is not None:
                users.add(user_id)
    end_all(session, users)
