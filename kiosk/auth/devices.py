"""Kiosk enrollment: a one-time link turns a browser into a school's kiosk."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from kiosk.db import locked
from kiosk.models import Kiosk, School


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
    session.flush()
    return kiosk, secret


def kiosk_for_device(session: Session, secret: str | None) -> Kiosk | None:
    if not secret:
        return None
    kiosk = session.scalar(
        select(Kiosk)
        .where(Kiosk.device_hash == hash_token(secret))
        .options(joinedload(Kiosk.school))
    )
    if kiosk is None or kiosk.revoked_at is not None:
        return None
    return kiosk


def start_token(secret_key: str, device_hash: str) -> str:
    """A CSRF token for the start control that never expires: bound to the device, not a time."""
    return hmac.new(secret_key.encode(), f"start:{device_hash}".encode(), "sha256").hexdigest()


def check_start_token(secret_key: str, device_hash: str, token: str) -> bool:
    return hmac.compare_digest(start_token(secret_key, device_hash), token or "")
