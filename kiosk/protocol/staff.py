"""Front-desk staff identify themselves with a 6-digit PIN after the alert is out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.models import Encounter, RoleGrant, User
from kiosk.protocol.events import Actor, record_event

PIN_PATTERN = re.compile(r"^[0-9]{6}$")
MAX_PIN_FAILURES = 5
LOCK_MINUTES = 15


@dataclass(frozen=True)
class PinResult:
    ok: bool
    message: str = ""
    user: User | None = None


def hash_secret(secret: str, method: str) -> str:
    return generate_password_hash(secret, method=method)


def desk_staff(session: Session, school_id: int) -> list[User]:
    """Return the people who may identify themselves at this school's kiosk."""
    return list(
        session.scalars(
            select(User)
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .where(
                User.active,
                User.pin_hash.is_not(None),
                RoleGrant.role == "front_desk",
                (RoleGrant.school_id == school_id) | RoleGrant.school_id.is_(None),
            )
            .order_by(User.display_name)
            .distinct()
        )
    )


def pin_matches(user: User, pin: str) -> bool:
    """Check a PIN against its hash: slow on purpose, so done before any write lock."""
    return bool(PIN_PATTERN.match(pin or "")) and check_password_hash(user.pin_hash or "", pin)


def record_pin(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    user: User,
    matched: bool,
    now: datetime,
) -> PinResult:
    """Apply a checked PIN to the (locked) user: five wrong ones lock that person for a
    while, and nothing else."""
    if user.pin_locked_until is not None and user.pin_locked_until > now:
        return PinResult(
            False,
            "This name is locked after too many wrong PINs. Choose another "
            "name or continue without one; the record continues either way.",
        )
    if not matched:
        user.pin_failures += 1
        if user.pin_failures >= MAX_PIN_FAILURES:
            user.pin_failures = 0
            user.pin_locked_until = now + timedelta(minutes=LOCK_MINUTES)
            record_event(session, encounter, "staff_pin_locked", actor, now, {"user": user.id})
            return PinResult(
                False,
                "Too many wrong PINs: this name is locked for "
                f"{LOCK_MINUTES} minutes. The record continues without it.",
            )
        left = MAX_PIN_FAILURES - user.pin_failures
        return PinResult(False, f"That PIN is not right. {left} tries left for this name.")
    user.pin_failures = 0
    user.pin_locked_until = None
    if encounter.recorded_by_user_id is None:
        encounter.recorded_by_user_id = user.id
    record_event(session, encounter, "staff_identified", actor, now, {"user": user.id})
    return PinResult(True, user=user)
