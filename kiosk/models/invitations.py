"""Links that let a person set their own password: an invitation, or a reset an admin sends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.clock import now_utc
from kiosk.models.base import Base, UTCDateTime

INVITATION_PURPOSES = ("invitation", "reset")


class Invitation(Base):
    """A one-time link to set a password. Only a hash of its token is kept: the link itself
    is shown once to the admin who made it and sent once to the person by email."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20), default="invitation")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set once: when the password was set through it, or when a newer link replaced it.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
