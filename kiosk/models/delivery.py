"""Messages to people (the outbox) and acknowledgements of alerts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.clock import now_utc
from kiosk.models.base import Base, UTCDateTime, new_public_id

OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "dead")


class OutboxMessage(Base):
    """A message rendered whole at enqueue and sent verbatim on every try."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int | None] = mapped_column(ForeignKey("encounters.id"), index=True)
    # A test alert's messages name no encounter: they belong to the test alert instead.
    test_alert_id: Mapped[int | None] = mapped_column(ForeignKey("test_alerts.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    level: Mapped[int] = mapped_column(Integer, default=1)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_via: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TestAlert(Base):
    """A test of a school's level-1 routing, sent by an administrator.

    Kept apart from encounters on purpose: it is never a record, so no list, count or export
    of encounters can ever include one. Its messages are ordinary outbox rows (same channels,
    same contacts, same acknowledgement links), marked by test_alert_id.
    """

    __tablename__ = "test_alerts"
    # Not a test case, whatever its name says (pytest collects classes named Test*).
    __test__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    # Who sent it: an administrator, or None for the command line.
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)
    contacts_alerted: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    acknowledged_channel: Mapped[str | None] = mapped_column(String(20))


class WorkerHeartbeat(Base):
    """The last time each delivery worker finished a round, for /healthz."""

    __tablename__ = "worker_heartbeats"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)


class Acknowledgement(Base):
    __tablename__ = "acknowledgements"

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    channel: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class AuditEntry(Base):
    """Append-only, hash-chained record of sensitive views, exports and admin changes."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(200))
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The first entry names the audit key it was made with (kiosk/audit.py key_fingerprint),
    # so that a wrong key is told apart from tampering; empty on every other entry, and on
    # the first entry of a chain begun before this was recorded.
    key_fingerprint: Mapped[str | None] = mapped_column(String(16), nullable=True)


class AuditHead(Base):
    """The chain's one head row: the newest entry's seq and hash.

    Every append locks it (FOR UPDATE on PostgreSQL; SQLite has one writer), takes the next
    seq from it and moves it on, so concurrent appends never leave a gap or share a seq.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditVerification(Base):
    """One run of `audit verify` or `audit checkpoint`, and what it found (for the review
    pages: when the record was last verified, and whether it was intact)."""

    __tablename__ = "audit_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)
    command: Mapped[str] = mapped_column(String(20))
    ok: Mapped[bool] = mapped_column(Boolean)
    checked: Mapped[int] = mapped_column(Integer, default=0)
    # The first entry found bad (None when intact, or when no entry is to blame).
    first_bad_seq: Mapped[int | None] = mapped_column(Integer)
    wrong_key: Mapped[bool] = mapped_column(Boolean, default=False)
