"""Sign-in: failed attempts counted per email and per client address, across servers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.models.base import Base, UTCDateTime


class SigninThrottle(Base):
    """Failed sign-ins for one email or one client address, known only by a hash of it."""

    __tablename__ = "signin_throttles"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # How many times this key was locked out; each lockout lasts twice as long as the last.
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The row is dropped after this moment: nothing recent to remember.
    forget_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SigninSession(Base):
    """One signed-in browser. Its cookie carries a random token; only the token's hash is kept.

    Deleting the row ends the session at once, wherever the cookie is."""

    __tablename__ = "signin_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
