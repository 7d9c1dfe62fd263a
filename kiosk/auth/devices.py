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
# Short codes are typed on a touch keyboard: no letters or digits that look alike (0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


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


def new_code() -> str:
    """A fresh short code: 8 characters of 31, about 8.5e11 values (guessing is throttled)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def shown_code(code: str) -> str:
    """The code as people read it: ABCD-EFGH."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def typed_code(typed: str | None) -> str | None:
    """The code as typed, in any case, with or without the dash or spaces; None if it
    cannot be a code at all."""
    cleaned = "".join((typed or "").split()).replace("-", "").upper()
    if len(cleaned) != CODE_LENGTH or any(char not in CODE_ALPHABET for char in cleaned):
        return None
    return cleaned


def hash_code(secret_key: str, code: str) -> str:
    """Keyed, so that a copy of the database cannot be searched for the live codes."""
    return hmac.new(secret_key.encode(), f"enroll-code:{code}".encode(), "sha256").hexdigest()


def issue_code(session: Session, kiosk: Kiosk, secret_key: str, now: datetime, minutes: int) -> str:
    """Give a waiting kiosk a short code to type at the device; a new code replaces the old."""
    code = new_code()
    while session.scalar(
        select(Kiosk.id).where(Kiosk.enrollment_code_hash == hash_code(secret_key, code))
    ):
        code = new_code()
    kiosk.enrollment_code_hash = hash_code(secret_key, code)
    kiosk.enrollment_code_expires_at = now + timedelta(minutes=minutes)
    session.flush()
    return code


def pending_code(
    session: Session, secret_key: str, typed: str | None, now: datetime
) -> Kiosk | None:
    """Return the kiosk a still-valid short code belongs to."""
    code = typed_code(typed)
    if code is None:
        return None
    kiosk = session.scalar(
        select(Kiosk)
        .where(Kiosk.enrollment_code_hash == hash_code(secret_key, code))
        .options(joinedload(Kiosk.school))
    )
    if kiosk is None or kiosk.revoked_at is not None:
        return None
    if kiosk.enrollment_code_expires_at is None or kiosk.enrollment_code_expires_at < now:
        return None
    return kiosk


def enroll_by_code(
    session: Session, secret_key: str, typed: str | None, now: datetime
) -> tuple[Kiosk, str] | None:
    """Use the short code once, like the link: of two devices typing it at once, one enrolls."""
    found = pending_code(session, secret_key, typed, now)
    if found is None:
        return None
    expected = found.enrollment_code_hash
    # Decide on the row as it is now (locked() refreshes `found` itself): of two devices, the
    # second finds the code already used.
    kiosk = locked(session, Kiosk, found.id)
    if kiosk is None or expected is None or kiosk.enrollment_code_hash != expected:
        return None
    return kiosk, _bind_device(session, kiosk, now)


def _bind_device(session: Session, kiosk: Kiosk, now: datetime) -> str:
    """Bind a new device secret to the (locked) kiosk; its link and code stop working."""
    secret = secrets.token_urlsafe(32)
    kiosk.device_hash = hash_token(secret)
    kiosk.enrollment_token_hash = None
    kiosk.enrollment_expires_at = None
    kiosk.enrollment_code_hash = None
    kiosk.enrollment_code_expires_at = None
    kiosk.enrolled_at = now
    kiosk.last_seen_at = now
    session.flush()
    return secret


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
    return kiosk, _bind_device(session, kiosk, now)


def device_kiosk(session: Session, secret: str | None) -> Kiosk | None:
    """Return the kiosk a device secret was bound to, usable or not."""
    if not secret:
        return None
    return session.scalar(
        select(Kiosk)
        .where(Kiosk.device_hash == hash_token(secret))
        .options(joinedload(Kiosk.school))
    )


def status(kiosk: Kiosk, now: datetime) -> str:
    """One word for the kiosk's state: revoked, expired (unused past the limit), waiting
    (for its device to be set up) or active."""
    if kiosk.revoked_at is not None:
        return "revoked"
    if kiosk.enrolled_at is None:
        return "waiting"
    return "active" if usable(kiosk, now) else "expired"


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
    kiosk.enrollment_code_hash = None
    kiosk.enrollment_code_expires_at = None
    session.flush()
    return True


def start_token(secret_key: str, device_hash: str) -> str:
    """A CSRF token for the start control that never expires: bound to the device, not a time."""
    return hmac.new(secret_key.encode(), f"start:{device_hash}".encode(), "sha256").hexdigest()


def check_start_token(secret_key: str, device_hash: str, token: str) -> bool:
    return hmac.compare_digest(start_token(secret_key, device_hash), token or "")
