"""The district, its schools, kiosks, people and the contacts alerted for each school."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiosk.clock import now_utc
from kiosk.models.base import Base, UTCDateTime, new_public_id
from kiosk.models.sealed import SealedText, register

ROLES = ("front_desk", "designee", "reviewer", "counsel", "admin")
CONTACT_CHANNELS = ("email", "webhook", "sms")


class District(Base):
    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    office_phone: Mapped[str] = mapped_column(String(40), default="")
    hotline_phone: Mapped[str] = mapped_column(String(40), default="")
    hotline_enabled: Mapped[bool] = mapped_column(Boolean, default=False)


class School(Base):
    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    office_phone: Mapped[str] = mapped_column(String(40), default="")
    # Escalation: if nobody has acknowledged, level 2 is alerted level2_after_minutes after
    # the tap, level 3 level3_after_minutes after it; then a re-alert every realert_minutes.
    level2_after_minutes: Mapped[int] = mapped_column(Integer, default=3)
    level3_after_minutes: Mapped[int] = mapped_column(Integer, default=10)
    realert_minutes: Mapped[int] = mapped_column(Integer, default=5)
    # School hours in the school's time zone; outside them after-hours contacts take level 1.
    hours_open: Mapped[str] = mapped_column(String(5), default="07:00")
    hours_close: Mapped[str] = mapped_column(String(5), default="17:00")
    school_days: Mapped[str] = mapped_column(String(20), default="0,1,2,3,4")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    contacts: Mapped[list[Contact]] = relationship(back_populates="school")


class Kiosk(Base):
    __tablename__ = "kiosks"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    label: Mapped[str] = mapped_column(String(100), default="Front desk")
    device_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrollment_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrollment_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    # When the device was last used, to the minute (written at most once a minute).
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A short code to type at the device instead of opening the link: only a keyed hash is
    # kept, and it lasts minutes, not days (see kiosk/auth/devices.py).
    enrollment_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrollment_code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the admins were last told this kiosk has gone quiet: once per silence.
    silence_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    school: Mapped[School] = relationship()


@register
class User(Base):
    __tablename__ = "users"
    __seal_identity__ = ("public_id",)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    display_name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    pin_hash: Mapped[str | None] = mapped_column(String(255))
    pin_failures: Mapped[int] = mapped_column(Integer, default=0)
    pin_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last wrong PIN: failures older than FAILURE_MEMORY before the next one are forgotten.
    pin_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    # The second factor (TOTP): the secret shared with the person's authenticator app,
    # sealed at rest. It is set when enrollment starts and in use once enrolled_at is set.
    totp_secret: Mapped[str | None] = mapped_column(SealedText(64))
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last time step a code was accepted for: no code is accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    grants: Mapped[list[RoleGrant]] = relationship(back_populates="user")


class RoleGrant(Base):
    """A role for one school, or for the whole district when school_id is NULL."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("user_id", "role", "school_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id"))

    user: Mapped[User] = relationship(back_populates="grants")


class Contact(Base):
    """Someone alerted for a school at an escalation level; needs no account."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    level: Mapped[int] = mapped_column(Integer, default=1)
    name: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str] = mapped_column(String(20), default="email")
    address: Mapped[str] = mapped_column(String(500))
    phone: Mapped[str] = mapped_column(String(40), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # An after-hours contact replaces the level-1 contacts outside school hours.
    after_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    # Off-site places (bus, field_trip, event), comma-joined: this contact is alerted, with
    # level 1, when an encounter is reported from one of them. Empty: the usual levels.
    places: Mapped[str] = mapped_column(String(100), default="")
    webhook_format: Mapped[str] = mapped_column(String(20), default="generic")
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    school: Mapped[School] = relationship(back_populates="contacts")
