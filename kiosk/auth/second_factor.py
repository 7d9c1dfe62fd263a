"""The second factor: a six-digit code from the person's authenticator app (TOTP, RFC 6238),
or one of their single-use recovery codes.

Operations take a session and plain values, flush, and never commit. Each one that checks
a code loads the person's row for update first, so two requests carrying the same code
cannot both pass: the second sees the time step the first used and is refused.

The TOTP secret is sealed at rest (kiosk.models.sealed). Recovery codes are kept as a
plain SHA-256 of the code: each code is about 79 random bits, so a stolen table cannot be
reversed by guessing, and a slow password hash would add nothing but work under the write
lock (the code is looked up by its hash inside the unit of work that marks it used)."""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from kiosk.auth import sessions
from kiosk.auth.policy import second_factor_required
from kiosk.models import RecoveryCode, RoleGrant, User

DIGITS = 6
STEP_SECONDS = 30
# A code from the step just before or after is accepted too: a phone's clock a little off.
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: a code copied from paper reads one way only.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_GROUPS = 4
RECOVERY_GROUP_LENGTH = 4
# The name the authenticator app shows above the code.
ISSUER = "School front office"
TOTP_CODE = re.compile(rf"^[0-9]{{{DIGITS}}}$")


class SecondFactorError(ValueError):
    """The change cannot be made; the message says why, in words for the person."""


class Check(enum.Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    REPLAYED = "replayed"  # a right code, already used once


@dataclass(frozen=True)
class Enrollment:
    """What the person copies into their authenticator app."""

    secret: str
    uri: str

    @property
    def grouped_secret(self) -> str:
        """The secret in groups of four, easier to type."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))

    @property
    def qr_data_uri(self) -> str:
        """The otpauth:// URI as a QR code, an SVG image in a data: URI (the CSP allows
        data: images, and nothing is loaded from elsewhere)."""
        return str(segno.make(self.uri, error="m").svg_data_uri(scale=5, border=4))


def enrolled(user: User) -> bool:
    """Say whether the person signs in with a second factor."""
    return user.totp_enrolled_at is not None and bool(user.totp_secret)


def roles_of(db: Session, user_id: int) -> set[str]:
    return set(db.scalars(select(RoleGrant.role).where(RoleGrant.user_id == user_id)))


def required(db: Session, user_id: int) -> bool:
    """Say whether the person's roles require a second factor (see kiosk.auth.policy)."""
    return second_factor_required(roles_of(db, user_id))


def _locked_user(db: Session, user_id: int) -> User:
    user = db.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise SecondFactorError("This account no longer exists.")
    return user


def enrollment_of(user: User, secret: str) -> Enrollment:
    label = user.email or user.display_name
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=label, issuer_name=ISSUER
    )
    return Enrollment(secret=secret, uri=uri)


def begin_enrollment(db: Session, user_id: int) -> Enrollment:
    """The secret the person is to add to their app: a new one, or the one they were shown
    already (a reloaded page shows the same secret as the app has)."""
    user = _locked_user(db, user_id)
    if enrolled(user):
        raise SecondFactorError("The second factor is already on for this account.")
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()  # 160 bits
        db.flush()
    assert user.totp_secret is not None
    return enrollment_of(user, user.totp_secret)


def _match(secret: str, code: str, last_step: int | None, now: datetime) -> tuple[Check, int]:
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = totp.timecode(now)
    if not TOTP_CODE.match(code):
        return Check.WRONG, current
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if last_step is not None and step <= last_step:
                return Check.REPLAYED, step
            return Check.ACCEPTED, step
    return Check.WRONG, current


def normalise(code: str) -> str:
    """The code as typed, without spaces or hyphens, in lower case."""
    return re.sub(r"[\s-]+", "", code).lower()


def _hash(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


def _new_recovery_code() -> str:
    groups = (
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUP_LENGTH))
        for _ in range(RECOVERY_GROUPS)
    )
    return "-".join(groups)


def _replace_recovery_codes(db: Session, user_id: int, now: datetime) -> list[str]:
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    db.add_all(
        RecoveryCode(user_id=user_id, code_hash=_hash(code), created_at=now) for code in codes
    )
    db.flush()
    return codes


def confirm_enrollment(
    db: Session, user_id: int, code: str, now: datetime
) -> tuple[Check, list[str]]:
    """Turn the second factor on once the person proves their app has the secret; return
    the new recovery codes (to show once: only their hashes are kept)."""
    user = _locked_user(db, user_id)
    if enrolled(user):
        raise SecondFactorError("The second factor is already on for this account.")
    if not user.totp_secret:
        raise SecondFactorError("Start again: the setup page shows a new secret.")
    result, step = _match(user.totp_secret, normalise(code), user.totp_last_step, now)
    if result is not Check.ACCEPTED:
        return result, []
    user.totp_enrolled_at = now
    user.totp_last_step = step
    return Check.ACCEPTED, _replace_recovery_codes(db, user_id, now)


def check(db: Session, user_id: int, code: str, now: datetime) -> Check:
    """Check a code from the app, or a recovery code (used up by this check)."""
    user = _locked_user(db, user_id)
    if not enrolled(user):
        return Check.WRONG
    assert user.totp_secret is not None
    typed = normalise(code)
    if TOTP_CODE.match(typed):
        result, step = _match(user.totp_secret, typed, user.totp_last_step, now)
        if result is Check.ACCEPTED:
            user.totp_last_step = step
            db.flush()
        return result
    used = db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _hash(typed),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    if used.rowcount == 1:
        return Check.ACCEPTED
    spent = db.scalar(
        select(RecoveryCode.id).where(
            RecoveryCode.user_id == user_id, RecoveryCode.code_hash == _hash(typed)
        )
    )
    return Check.REPLAYED if spent is not None else Check.WRONG


def recovery_codes_left(db: Session, user_id: int) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def regenerate_recovery_codes(db: Session, user_id: int, now: datetime) -> list[str]:
    """New recovery codes; the earlier ones stop working."""
    user = _locked_user(db, user_id)
    if not enrolled(user):
        raise SecondFactorError("Turn the second factor on first.")
    return _replace_recovery_codes(db, user_id, now)


def _clear(db: Session, user: User) -> bool:
    had = bool(user.totp_secret) or user.totp_enrolled_at is not None
    user.totp_secret = None
    user.totp_enrolled_at = None
    user.totp_last_step = None
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.flush()
    return had


def turn_off(db: Session, user_id: int) -> None:
    """The person turns their own second factor off (not allowed when their role needs it)."""
    user = _locked_user(db, user_id)
    if required(db, user_id):
        raise SecondFactorError(
            "Your role requires a second factor, so it cannot be turned off. "
            "An administrator can reset it if you lose your device."
        )
    _clear(db, user)


def reset(db: Session, user: User) -> bool:
    """An administrator's reset (a lost phone): the secret and recovery codes are removed
    and the person's sessions end; they enroll again at their next sign-in if their role
    requires it. Return whether there was anything to reset. The caller records the change
    (kiosk.admin.changes.record_change) in the same unit of work."""
    locked = _locked_user(db, user.id)
    had = _clear(db, locked)
    sessions.end_all(db, {locked.id})
    return had
