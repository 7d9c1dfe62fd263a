"""Passwords and PINs: how they are hashed and checked, and the rules a new password must meet.

Both are hashed with argon2id. Hashes made by earlier versions (werkzeug's scrypt and pbkdf2)
still verify, and are replaced with argon2id the next time their owner signs in or types the
PIN (see needs_rehash), so no one has to reset anything.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from kiosk.models import User

MIN_LENGTH = 12
MAX_LENGTH = 256
ARGON2_PREFIX = "$argon2id$"
# The werkzeug methods earlier versions stored; anything else is refused, never guessed at.
OLD_PREFIXES = ("scrypt:", "pbkdf2:")


@dataclass(frozen=True)
class HashCost:
    """The argon2id parameters: time (passes), memory (KiB) and parallelism (lanes)."""

    time_cost: int = argon2.profiles.RFC_9106_LOW_MEMORY.time_cost
    memory_kib: int = argon2.profiles.RFC_9106_LOW_MEMORY.memory_cost
    parallelism: int = argon2.profiles.RFC_9106_LOW_MEMORY.parallelism


def cost_from(config: Mapping[str, Any]) -> HashCost:
    """The cost in the app's settings (KIOSK_PASSWORD_TIME_COST and so on), or RFC 9106's."""
    default = HashCost()
    return HashCost(
        time_cost=int(config.get("PASSWORD_TIME_COST", default.time_cost)),
        memory_kib=int(config.get("PASSWORD_MEMORY_KIB", default.memory_kib)),
        parallelism=int(config.get("PASSWORD_PARALLELISM", default.parallelism)),
    )


# argon2 reads the parameters from the hash it verifies; this one's own are never used.
_VERIFIER = argon2.PasswordHasher()


@functools.cache
def _hasher(cost: HashCost) -> argon2.PasswordHasher:
    return argon2.PasswordHasher(
        time_cost=cost.time_cost,
        memory_cost=cost.memory_kib,
        parallelism=cost.parallelism,
        type=argon2.Type.ID,
    )


def _cost(cost: HashCost | None) -> HashCost:
    return cost if cost is not None else cost_from(current_app.config)


def hash_password(secret: str, cost: HashCost | None = None) -> str:
    """Hash a password or PIN with argon2id: slow on purpose, so never inside a unit of work.

    The cost is the app's (current_app) unless given.
    """
    return _hasher(_cost(cost)).hash(secret)


def verify(hashed: str, secret: str) -> bool:
    """Whether the secret matches the hash: argon2id (with the parameters written in the hash),
    or an older werkzeug scrypt/pbkdf2 one. A hash in any other form (or none) matches nothing.
    """
    if hashed.startswith(ARGON2_PREFIX):
        try:
            return _VERIFIER.verify(hashed, secret)
        except (VerificationError, InvalidHashError):
            return False
    if hashed.startswith(OLD_PREFIXES):
        try:
            return check_password_hash(hashed, secret)
        except ValueError:  # a damaged or unknown werkzeug hash
            return False
    return False


def needs_rehash(hashed: str, cost: HashCost | None = None) -> bool:
    """Whether a hash that just verified should be replaced: an older scheme, or argon2id made
    with other parameters than the ones set now."""
    if not hashed.startswith(ARGON2_PREFIX):
        return True
    try:
        return _hasher(_cost(cost)).check_needs_rehash(hashed)
    except InvalidHashError:
        return True


def rehash_if_needed(hashed: str, secret: str, cost: HashCost | None = None) -> str | None:
    """A new hash for a secret that just verified against `hashed`, if that one is outdated.

    Called before any unit of work, so the slow part never holds a lock; the caller stores the
    result only where the old hash is still the one in place.
    """
    return hash_password(secret, cost) if needs_rehash(hashed, cost) else None


def replace_password_hash(session: Session, user_id: int, old: str, new: str) -> bool:
    """Store a rehashed password, unless the password was changed since `old` was read (then
    the newer one stays). Flushes through the statement; the caller commits."""
    result = session.execute(
        update(User)
        .where(User.id == user_id, User.password_hash == old)
        .values(password_hash=new)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of the 10,000 most common passwords, lower-cased, read once."""
    text = resources.files("kiosk.auth").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problem(password: str, email: str | None = None) -> str | None:
    """What is wrong with a new password, in words, or None if it may be used."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    folded = password.strip().lower()
    if email:
        address = email.strip().lower()
        local = address.split("@", 1)[0]
        if folded in {address, local}:
            return "Do not use your email address as the password."
    if folded in common_passwords():
        return "This password is on a list of commonly used passwords. Choose another."
    return None
