"""Slow down guessing at sign-in, in the database so that it holds across processes and
servers: after a few failures for one email or from one address within a window, further
tries are refused at once, without checking (or hashing) the password, for a time that
doubles with each lockout.

Operations take a session and plain values, flush, and never commit. `refused()` only
reads (the cheap refusal path); `attempt()` runs inside the caller's unit of work and
counts the try before the password is checked, so that guesses sent at the same moment
cannot all slip under the limit while the first ones are still being hashed."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kiosk.models import SigninThrottle

# One address may be a whole school office behind one router: it gets more room than an email.
ADDRESS_ALLOWANCE = 5
# The longest lockout, however often a key is locked out.
LONGEST_LOCKOUT = timedelta(hours=24)
# A key with no failure and no lockout for this long is forgotten (and its back-off with it).
FORGET_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class Limit:
    """One key (a hash of an email or an address) and the failures it may have in a window."""

    key: str
    allowed: int


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\0{value}".encode()).hexdigest()


def email_key(email: str) -> str:
    """The key failures for one email are counted under (to lift its lockout)."""
    return _key("email", email.strip().lower())


def limits(email: str, address: str, allowed: int) -> tuple[Limit, Limit]:
    """The email's limit and (more loosely) the client address's."""
    return (
        Limit(_key("email", email), allowed),
        Limit(_key("address", address), allowed * ADDRESS_ALLOWANCE),
    )


def second_factor_limits(user_id: int, address: str, allowed: int) -> tuple[Limit, Limit]:
    """Wrong codes for one account, and the client address's (shared with passwords).

    The account's key is its own, not the email's: a right password clears the email's
    failures, and must not clear the count of codes guessed after it."""
    return (
        Limit(_key("second_factor", str(user_id)), allowed),
        Limit(_key("address", address), allowed * ADDRESS_ALLOWANCE),
    )


class KnownLockouts:
    """Lockouts this process has already read, kept until they end, so that a flood of
    guesses at a locked key is refused without even a read. A lockout only ever grows
    while it lasts (a locked key is never checked, so never cleared by a right password);
    only an administrator lifts one, so each is kept at most REMEMBER_FOR before a new read."""

    LIMIT = 10_000
    # A lockout is remembered at most this long before it is read again, so that one lifted
    # by an administrator (on another server, say) stops being refused here soon after.
    REMEMBER_FOR = timedelta(seconds=30)

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def locked(self, keys: tuple[Limit, ...], now: datetime) -> bool:
        with self._lock:
            return any(self._until.get(limit.key, now) > now for limit in keys)

    def remember(self, key: str, until: datetime, now: datetime) -> None:
        with self._lock:
            if len(self._until) >= self.LIMIT:
                self._until = {k: v for k, v in self._until.items() if v > now}
            if len(self._until) < self.LIMIT:
                self._until[key] = min(until, now + self.REMEMBER_FOR)

    def forget(self, key: str) -> None:
        """Drop a lockout lifted by an administrator."""
        with self._lock:
            self._until.pop(key, None)


def refused(
    session: Session, keys: tuple[Limit, ...], now: datetime, known: KnownLockouts | None = None
) -> bool:
    """Say whether any of the keys is locked out (a read, or none for a lockout this process
    already knows: no write lock is taken)."""
    if known is not None and known.locked(keys, now):
        return True
    row = session.execute(
        select(SigninThrottle.key, SigninThrottle.locked_until)
        .where(
            SigninThrottle.key.in_([limit.key for limit in keys]),
            SigninThrottle.locked_until > now,
        )
        .limit(1)
    ).first()
    if row is None:
        return False
    if known is not None and row.locked_until is not None:
        known.remember(row.key, row.locked_until, now)
    return True


def _locked_rows(session: Session, keys: tuple[Limit, ...], now: datetime) -> list[SigninThrottle]:
    """Create the missing rows (two servers may race to: one wins, neither fails), then load
    every row for update, in key order so that two writers never wait on each other."""
    values = [
        {
            "key": limit.key,
            "failures": 0,
            "lockouts": 0,
            "window_started_at": now,
            "forget_at": now + FORGET_AFTER,
        }
        for limit in keys
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(SigninThrottle).values(values).on_conflict_do_nothing())
    return list(
        session.scalars(
            select(SigninThrottle)
            .where(SigninThrottle.key.in_([limit.key for limit in keys]))
            .order_by(SigninThrottle.key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def attempt(
    session: Session,
    keys: tuple[Limit, ...],
    window: timedelta,
    now: datetime,
    started: list[Limit] | None = None,
) -> bool:
    """Count one try against every key; return False (counting nothing) if a key is locked out.

    The try that uses up a key's failures still goes ahead; it locks the key for the window,
    then twice as long on each further lockout (at most LONGEST_LOCKOUT). The keys it locks
    are added to started, when given: the moment a lockout begins is worth recording once,
    where recording every refused guess would add a write to each."""
    rows = _locked_rows(session, keys, now)
    if any(row.locked_until is not None and row.locked_until > now for row in rows):
        return False
    allowed = {limit.key: limit.allowed for limit in keys}
    for row in rows:
        if now - row.window_started_at >= window:
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        if row.failures >= allowed[row.key]:
            row.lockouts += 1
            row.locked_until = now + min(window * 2 ** (row.lockouts - 1), LONGEST_LOCKOUT)
            row.failures, row.window_started_at = 0, now
            if started is not None:
                started.extend(limit for limit in keys if limit.key == row.key)
        row.forget_at = max(now, row.locked_until or now) + FORGET_AFTER
    session.execute(delete(SigninThrottle).where(SigninThrottle.forget_at < now))
    session.flush()
    return True


def succeeded(session: Session, keys: tuple[Limit, ...]) -> None:
    """A right password: forget the email's failures, and take back the address's count for
    this try (an office's people signing in one after another never lock it out)."""
    email, address = keys
    # Both rows locked first, in key order as attempt() locks them: a right password and a
    # wrong one for the same email at the same moment would otherwise wait on each other.
    rows = session.scalars(
        select(SigninThrottle)
        .where(SigninThrottle.key.in_([email.key, address.key]))
        .order_by(SigninThrottle.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    for row in rows:
        if row.key == address.key and row.failures > 0:
            row.failures -= 1
    session.flush()
    session.execute(delete(SigninThrottle).where(SigninThrottle.key == email.key))
    session.flush()


def address_limit(kind: str, address: str, allowed: int) -> tuple[Limit]:
    """One client address's tries at something other than sign-in (kind names it: an
    enrollment code, say), counted in the same table."""
    return (Limit(_key(kind, address), allowed),)


def forgive(session: Session, keys: tuple[Limit, ...]) -> None:
    """Take back one counted try for each key: a right answer costs nothing."""
    for limit in keys:
        row = session.scalar(
            select(SigninThrottle).where(SigninThrottle.key == limit.key).with_for_update()
        )
        if row is not None and row.failures > 0:
            row.failures -= 1
    session.flush()
