"""Recovery codes: single-use stand-ins for a code from the authenticator app."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.models.base import Base, UTCDateTime


class RecoveryCode(Base):
    """One recovery code, known only by its SHA-256 (see kiosk.auth.second_factor for why a
    fast hash is enough); used_at is set the one time it is used."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
