"""The rules a new password must meet."""

from __future__ import annotations

MIN_LENGTH = 12


def password_problem(password: str, email: str | None = None) -> str | None:
    """What is wrong with a new password, in words, or None if it may be used."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    return None
