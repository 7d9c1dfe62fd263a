"""Front-desk staff identify themselves with a 6-digit PIN after the alert is out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.auth import passwords
from kiosk.models import Encounter, RoleGrant, User
from kiosk.protocol.events import Actor, record_event

PIN_PATTERN = re.compile(r"^[0-9]{6}$")
MAX_PIN_FAILURES = 5
LOCK_MINUTES = 15
# Wrong PINs are forgotten once this long passes without another: a person who mistypes now
# and then is never locked, while five guesses in a row still lock the name.
FAILURE_MEMORY = timedelta(minutes=15)


@dataclass(frozen=True)
class PinResult:
    ok: bool
    message: str = ""
    user: User | None = None


@dataclass(frozen=True)
class PinCheck:
    """A PIN checked against the hash read before any lock: whether it matched, and, when it
    matched an outdated hash, the new hash to store in its place."""

    matched: bool
    checked_hash: str | None = None
    rehashed: str | None = None


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


def verify_pin(user: User, pin: str) -> PinCheck:
    """Check a PIN against its hash (and rehash it if outdated): slow on purpose, so done
    before any write lock."""
    hashed = user.pin_hash or ""
    if not PIN_PATTERN.match(pin or "") or not passwords.verify(hashed, pin):
        return PinCheck(False)
    return PinCheck(True, hashed, passwords.rehash_if_needed(hashed, pin))


def record_pin(
    session: Session,
    encounter: Encounter,
    actor: Actor,
    user: User,
    check: PinCheck,
    now: datetime,
) -> PinResult:
    """Apply a checked PIN to the (locked) user: five wrong ones in a row lock that person for
    a while, and nothing else; wrong ones are forgotten FAILURE_MEMORY after the last. A person
    disabled since their name was tapped is refused."""
    if not user.active:
        return PinResult(
            False,
            "This name cannot be used at the desk now. Choose another name or continue "
            "without one; the record continues either way.",
        )
    if user.pin_locked_until is not None and user.pin_locked_until > now:
        return PinResult(
            False,
            "This name is locked after too many wrong PINs. Choose another "
            "name or continue without one; the record continues either way.",
        )
    if not check.matched:
        if user.pin_failed_at is None or now - user.pin_failed_at >= FAILURE_MEMORY:
            user.pin_failures = 0
        user.pin_failures += 1
        user.pin_failed_at = now
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
        tries = "try" if left == 1 else "tries"
        return PinResult(False, f"That PIN is not right. {left} {tries} left for this name.")
    user.pin_failures = 0
    user.pin_failed_at = None
    user.pin_locked_until = None
    if check.rehashed is not None and user.pin_hash == check.checked_hash:
        # Only over the hash the PIN was checked against: a PIN changed meanwhile stays.
        user.pin_hash = check.rehashed
    if encounter.recorded_by_user_id is None:
        encounter.recorded_by_user_id = user.id
    record_event(session, encounter, "staff_identified", actor, now, {"user": user.id})
    return PinResult(True, user=user)
