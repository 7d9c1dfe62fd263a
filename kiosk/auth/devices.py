"""Kiosk enrollment: a one-time link turns a browser into a school's kiosk."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, joinedload

from kiosk.db import locked
from kiosk.models import Kiosk, School

# A device unused this long is no longer a kiosk: its cookie expires, and the server agrees.
DEVICE_UNUSED_LIMIT = timedelta(days=90)
# The last check-in is written at most this often per kiosk.
CHECK_IN_EVERY = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_enrollment(
    session: Session,
    school: School,
    now: datetime,
    hours: int,
    kiosk: Kiosk | None = None,
    label: str = "Front desk",
) -> tuple[Kiosk, str]:
    """Create a kiosk (or renew an unenrolled one) and return it with its one-time token."""
    token = secrets.token_urlsafe(32)
    if kiosk is None:
        kiosk = Kiosk(school_id=school.id, label=label, created_at=now)
        kiosk.school = school
        session.add(kiosk)
    kiosk.enrollment_token_hash = hash_token(token)
    kiosk.enrollment_expires_at = now + timedelta(hours=hours)
    session.flush()
    return kiosk, token


def pending_enrollment(session: Session, token: str, now: datetime) -> Kiosk | None:
    """Return the kiosk a still-valid enrollment token belongs to."""
    kiosk = session.scalar(select(Kiosk).where(Kiosk.enrollment_token_hash == hash_token(token)))
    if kiosk is None or kiosk.revoked_at is not None:
        return None
    if kiosk.enrollment_expires_at is None or kiosk.enrollment_expires_at < now:
        return None
    return kiosk


def enroll(session: Session, token: str, now: datetime) -> tuple[Kiosk, str] | None:
    """Use the token once: bind a new device secret to the kiosk and return it."""
    found = pending_enrollment(session, token, now)
    if found is None:
        return None
    # Decide on the row as it is now: of two presses of one link, one enrolls.
    kiosk = locked(session, Kiosk, found.id)
    if kiosk is None or kiosk.enrollment_token_hash != hash_token(token):
        return None
    secret = secrets.token_urlsafe(32)
    kiosk.device_hash = hash_token(secret)
    kiosk.enrollment_token_hash = None
    kiosk.enrollment_expires_at = None
    kiosk.enrolled_at = now
    kiosk.last_seen_at = now
    session.flush()
    return kiosk, secret


def device_kiosk(session: Session, secret: str | None) -> Kiosk | None:
    """Return the kiosk a device secret was bound to, usable or not."""
    if not secret:
        return None
    return session.scalar(
        select(Kiosk)
        .where(Kiosk.device_hash == hash_token(secret))
        .options(joinedload(Kiosk.school))
    )


def usable(kiosk: Kiosk, now: datetime) -> bool:
    """False once the kiosk is revoked, or when it has gone unused past the limit."""
    if kiosk.revoked_at is not None:
        return False
    last_used = kiosk.last_seen_at or kiosk.enrolled_at
    return last_used is None or last_used > now - DEVICE_UNUSED_LIMIT


def kiosk_for_device(session: Session, secret: str | None, now: datetime) -> Kiosk | None:
    kiosk = device_kiosk(session, secret)
    if kiosk is None or not usable(kiosk, now):
        return None
    return kiosk


def check_in_due(kiosk: Kiosk, now: datetime) -> bool:
    return kiosk.last_seen_at is None or kiosk.last_seen_at <= now - CHECK_IN_EVERY


def check_in(session: Session, kiosk_id: int, now: datetime) -> bool:
    """Record that the kiosk was used; a no-op if another request did so within the minute."""
    result = session.execute(
        update(Kiosk)
        .where(
            Kiosk.id == kiosk_id,
            Kiosk.revoked_at.is_(None),
            or_(Kiosk.last_seen_at.is_(None), Kiosk.last_seen_at <= now - CHECK_IN_EVERY),
        )
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def revoke(session: Session, kiosk: Kiosk, now: datetime) -> bool:
    """Take a kiosk back: its device and any pending enrollment link stop working.

    Returns False if it was already revoked. Its records stay as they are.
    """
    if kiosk.revoked_at is not None:
        return False
    kiosk.revoked_at = now
    kiosk.enrollment_token_hash = None
    kiosk.enrollment_expires_at = None
    session.flush()
    return True


def start_token(secret_key: str, device_hash: str) -> str:
    """A CSRF token for the start control that never expires: bound to the device, not a time."""
    return hmac.new(secret_key.encode(), f"start:{device_hash}".encode(), "sha256").hexdigest()


def check_start_token(secret_key: str, device_hash: str, token: str) -> bool:
    return hmac.compare_digest(start_token(secret_key, device_hash), token or "")
