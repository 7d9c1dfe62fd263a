"""Invitation and password-reset links: a one-time link with which a person sets a password.

Like a kiosk's enrollment link, only a hash of the token is kept; the link is shown once to
the admin who made it and emailed once to the person. It works once, until it expires, and
a newer link for the same person replaces the older one.

Operations take a session and plain values, flush, and never commit."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kiosk.auth import sessions
from kiosk.db import locked
from kiosk.models import District, Invitation, User
from kiosk.notify.accounts import enqueue_link

INVITATION = "invitation"
RESET = "reset"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def welcome_link(base_url: str, token: str) -> str:
    return f"{base_url}/welcome/{token}"


def issue(
    session: Session,
    user: User,
    purpose: str,
    now: datetime,
    days: int,
    created_by: User | None = None,
) -> tuple[Invitation, str]:
    """Make a new link for the person and return it with its token (never stored); any
    earlier link of theirs still open stops working."""
    withdraw(session, user.id, now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        user_id=user.id,
        purpose=purpose,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + timedelta(days=days),
        created_by_user_id=created_by.id if created_by is not None else None,
    )
    session.add(invitation)
    session.flush()
    return invitation, token


def email_configured(config: Any) -> bool:
    """Whether email can go out: an SMTP server, or the demo's local mail log."""
    return bool(config.get("SMTP_HOST") or config.get("DEMO"))


def expiry_words(moment: datetime) -> str:
    return moment.strftime("%B %d, %Y, %H:%M UTC")


def mail_link(
    session: Session, config: Any, user: User, invitation: Invitation, token: str, now: datetime
) -> bool:
    """Email the link to the person through the outbox, if email is set up; say whether."""
    if not user.email or not email_configured(config):
        return False
    district = session.scalar(select(District.name).limit(1)) or "the school district"
    enqueue_link(
        session,
        invitation_id=invitation.id,
        purpose=invitation.purpose,
        recipient=user.email,
        name=user.display_name,
        district=district,
        link=welcome_link(config["BASE_URL"], token),
        expires=expiry_words(invitation.expires_at),
        now=now,
    )
    return True


def withdraw(session: Session, user_id: int, now: datetime) -> None:
    """Close every open link of the person (disabled, or a newer link made)."""
    session.execute(
        update(Invitation)
        .where(
            Invitation.user_id == user_id,
            Invitation.used_at.is_(None),
            Invitation.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=now)
        .execution_options(synchronize_session=False)
    )


def _open(invitation: Invitation | None, user: User | None, now: datetime) -> bool:
    return (
        invitation is not None
        and user is not None
        and user.active
        and invitation.used_at is None
        and invitation.withdrawn_at is None
        and invitation.expires_at > now
    )


def pending(session: Session, token: str, now: datetime) -> tuple[Invitation, User] | None:
    """The open link the token names and its person, or None (a read)."""
    row = session.execute(
        select(Invitation, User)
        .join(User, User.id == Invitation.user_id)
        .where(Invitation.token_hash == hash_token(token))
    ).first()
    if row is None or not _open(row[0], row[1], now):
        return None
    return row[0], row[1]


def open_link(session: Session, user_id: int, now: datetime) -> Invitation | None:
    """The person's link still waiting to be used, if any."""
    return session.scalar(
        select(Invitation)
        .where(
            Invitation.user_id == user_id,
            Invitation.used_at.is_(None),
            Invitation.withdrawn_at.is_(None),
            Invitation.expires_at > now,
        )
        .order_by(Invitation.id.desc())
        .limit(1)
    )


def redeem(session: Session, token: str, password_hash: str, now: datetime) -> User | None:
    """Use the link once: set the person's password (hashed beforehand, outside the lock)
    and end any session they had. Of two uses at the same moment, one sets it; None for the
    other, and for a link that is used, replaced, expired, or whose person is disabled."""
    found = pending(session, token, now)
    if found is None:
        return None
    invitation = locked(session, Invitation, found[0].id)
    user = locked(session, User, found[1].id)
    if not _open(invitation, user, now):
        return None
    assert invitation is not None and user is not None
    invitation.used_at = now
    user.password_hash = password_hash
    sessions.end_all(session, {user.id})
    session.flush()
    return user
