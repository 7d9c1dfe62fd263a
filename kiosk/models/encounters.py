"""Encounters and everything recorded during one."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from kiosk.clock import now_utc
from kiosk.models.base import Base, UTCDateTime, new_public_id
from kiosk.models.places import Kiosk, School
from kiosk.models.sealed import SealedText, register


class ScriptVersion(Base):
    """One version of the script pack, stored whole and never edited; encounters point at the
    one shown. Desks show the version counsel approved last (the active one), or the shipped
    draft while none is approved."""

    __tablename__ = "script_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(80))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    author: Mapped[str] = mapped_column(String(120), default="")
    approved_by: Mapped[str | None] = mapped_column(String(120))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The counsel account that approved it (approved_by keeps the name as it was then).
    approved_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # When counsel means to look at it again; the scripts page flags it once passed.
    review_due: Mapped[date | None] = mapped_column(Date)
    # The version an edit started from, if any.
    based_on_id: Mapped[int | None] = mapped_column(ForeignKey("script_versions.id"))
    # The shipped pack's sha256 when this version was approved: a newer release's pack is
    # offered to counsel as a difference, never put in its place.
    shipped_sha: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


OPEN_CONDITION = "status != 'resolved'"
STOOD_DOWN_CONDITION = "stood_down_at IS NOT NULL"


@register
class Encounter(Base):
    __tablename__ = "encounters"
    __seal_identity__ = ("public_id",)
    # The review log reads newest first. One school's log walks the first index; the open
    # ones and those stood down, few among many, walk partial indexes of their own (the log
    # writes these two conditions exactly so, with the literal inline, so both databases
    # match them to the index).
    __table_args__ = (
        Index("ix_encounters_school_started", "school_id", "started_at"),
        Index(
            "ix_encounters_open_started",
            "started_at",
            sqlite_where=text(OPEN_CONDITION),
            postgresql_where=text(OPEN_CONDITION),
        ),
        Index(
            "ix_encounters_stood_down_started",
            "started_at",
            sqlite_where=text(STOOD_DOWN_CONDITION),
            postgresql_where=text(STOOD_DOWN_CONDITION),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosks.id"), index=True)
    start_nonce: Mapped[str | None] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(20), default="in_person")
    place: Mapped[str | None] = mapped_column(String(30))
    agents_present: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    desk_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the desk last said an old open record is still the same visit (see is_stale).
    visit_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stood_down_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    script_version_id: Mapped[int | None] = mapped_column(ForeignKey("script_versions.id"))
    event_count: Mapped[int] = mapped_column(Integer, default=0)

    # What was asked.
    request_kinds: Mapped[str] = mapped_column(String(200), default="")
    request_other: Mapped[str | None] = mapped_column(SealedText(200))
    purpose: Mapped[str | None] = mapped_column(SealedText)
    consent_claimed: Mapped[str | None] = mapped_column(String(10))
    consent_claim: Mapped[str | None] = mapped_column(SealedText)

    # Summary columns kept in step with the events, so review filters stay fast.
    doc_first_impression: Mapped[str | None] = mapped_column(String(30), index=True)
    doc_confirmed_type: Mapped[str | None] = mapped_column(String(30), index=True)
    exigency: Mapped[bool | None] = mapped_column(Boolean, index=True)
    exigency_reason: Mapped[str | None] = mapped_column(SealedText)
    exigency_directives: Mapped[str | None] = mapped_column(SealedText)
    outcome: Mapped[str | None] = mapped_column(String(30), index=True)
    outcome_other: Mapped[str | None] = mapped_column(SealedText)
    entry_areas: Mapped[str | None] = mapped_column(SealedText)
    entry_started: Mapped[str | None] = mapped_column(String(5))
    entry_ended: Mapped[str | None] = mapped_column(String(5))
    witnesses: Mapped[str | None] = mapped_column(SealedText)
    # Set once the desk records that agents went in without consent; it stays set when a
    # later outcome (they left, say) is recorded, because it happened.
    entered_without_consent: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # When a parent or other adult is sought: who stays with the child (desk), and how the
    # district office arranged the child's care.
    child_with: Mapped[str | None] = mapped_column(SealedText)
    care_arranged: Mapped[str | None] = mapped_column(SealedText)
    care_arranged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_alert_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_late: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    followup_sent: Mapped[bool] = mapped_column(Boolean, default=False)

    # Escalation, scheduled in the database so that it survives restarts.
    escalation_level: Mapped[int] = mapped_column(Integer, default=1)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    realerts: Mapped[int] = mapped_column(Integer, default=0)
    # How many requests its kiosk had started in the burst window when this one began, if
    # that was more than usual: the office is told, the tap is never refused.
    kiosk_burst: Mapped[int | None] = mapped_column(Integer)

    # What the district office did.
    designee_on_scene_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    counsel_contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_check: Mapped[str | None] = mapped_column(String(20))
    consent_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    guardian_notice: Mapped[str | None] = mapped_column(String(20))
    guardian_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    guardian_notice_by: Mapped[str | None] = mapped_column(SealedText(120))
    guardian_notice_reason: Mapped[str | None] = mapped_column(SealedText)
    resolution_notes: Mapped[str | None] = mapped_column(SealedText)

    # Retention (kiosk.retention): a legal hold keeps the content past the retention
    # period; purged_at says when the content was removed under the retention policy.
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    held_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    hold_reason: Mapped[str | None] = mapped_column(SealedText(300))
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    school: Mapped[School] = relationship()
    kiosk: Mapped[Kiosk | None] = relationship()
    agents: Mapped[list[Agent]] = relationship(
        back_populates="encounter", order_by="Agent.position"
    )
    named_people: Mapped[list[NamedPerson]] = relationship(
        back_populates="encounter", order_by="NamedPerson.position"
    )
    documents: Mapped[list[Document]] = relationship(
        back_populates="encounter", order_by="Document.position"
    )
    events: Mapped[list[EncounterEvent]] = relationship(
        back_populates="encounter", order_by="EncounterEvent.seq"
    )


@register
class Agent(Base):
    __tablename__ = "agents"
    __seal_identity__ = ("encounter_id", "position")
    __table_args__ = (UniqueConstraint("encounter_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(SealedText(120))
    badge_number: Mapped[str | None] = mapped_column(SealedText(60))
    agency_printed: Mapped[str | None] = mapped_column(String(200))
    agency_pick: Mapped[str | None] = mapped_column(String(30))
    title: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(SealedText(40))
    supervisor_name: Mapped[str | None] = mapped_column(SealedText(120))
    supervisor_phone: Mapped[str | None] = mapped_column(SealedText(40))
    # A set, comma-joined: shown freely, only when asked, refused, hidden after being shown.
    id_shown: Mapped[str | None] = mapped_column(String(60))
    attire: Mapped[str | None] = mapped_column(String(20))
    card_kept: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    encounter: Mapped[Encounter] = relationship(back_populates="agents")


@register
class NamedPerson(Base):
    """A person the agent named: one row each; everything else refers to the row by id."""

    __tablename__ = "named_people"
    __seal_identity__ = ("encounter_id", "position")
    __table_args__ = (UniqueConstraint("encounter_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(SealedText)
    name_index: Mapped[str] = mapped_column(String(64), index=True)
    relation: Mapped[str] = mapped_column(String(20), default="unknown")
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    encounter: Mapped[Encounter] = relationship(back_populates="named_people")


@register
class Document(Base):
    __tablename__ = "documents"
    __seal_identity__ = ("encounter_id", "position")
    __table_args__ = (UniqueConstraint("encounter_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    # The desk's plain yes/no/unsure answers, kept beside the impression they led to.
    answers: Mapped[str] = mapped_column(Text, default="{}")
    first_impression: Mapped[str | None] = mapped_column(String(30))
    # The common document the desk tapped, if it started from one (documents.PICKS).
    pick: Mapped[str | None] = mapped_column(String(30))
    # Whether the document names a person (an arrest warrant does): yes, no or unsure.
    names_person: Mapped[str | None] = mapped_column(String(10))
    confirmed_type: Mapped[str | None] = mapped_column(String(30))
    confirmed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issuer: Mapped[str | None] = mapped_column(SealedText(200))
    case_number: Mapped[str | None] = mapped_column(SealedText(100))
    dates: Mapped[str | None] = mapped_column(String(200))
    names_addresses: Mapped[str | None] = mapped_column(SealedText)
    matches_school: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    encounter: Mapped[Encounter] = relationship(back_populates="documents")


@register
class DeskMessage(Base):
    """A short instruction from the district office to the desk, revealed on a tap."""

    __tablename__ = "desk_messages"
    __seal_identity__ = ("public_id",)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    preset: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(SealedText(300))
    sender_label: Mapped[str] = mapped_column(String(200), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    revealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@register
class LateAddition(Base):
    """What the desk sent after its record had ended: kept on the encounter, never dropped."""

    __tablename__ = "late_additions"
    __seal_identity__ = ("public_id",)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosks.id"))
    # Which desk screen it came from, e.g. "request".
    step: Mapped[str] = mapped_column(String(30))
    # The fields as posted (JSON); free text may name people, so it is sealed at rest.
    content: Mapped[str] = mapped_column(SealedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class Photo(Base):
    """A photo of a document or business card: re-encoded, stored sealed in the database."""

    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    kind: Mapped[str] = mapped_column(String(20), default="document")
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # Sealed with the row's public_id (kiosk.photos); loaded only when the photo is served.
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    # Photos kept before they moved into the database: a file under PHOTO_DIR until
    # `flask keys rotate` seals it into content.
    stored_name: Mapped[str | None] = mapped_column(String(100), unique=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    uploaded_by_kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosks.id"))


class EncounterEvent(Base):
    """One change to an encounter; written only through protocol.events.record_event()."""

    __tablename__ = "encounter_events"
    __table_args__ = (UniqueConstraint("encounter_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    kind: Mapped[str] = mapped_column(String(40))
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_label: Mapped[str] = mapped_column(String(200), default="")
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosks.id"))
    actor_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    script_version_id: Mapped[int | None] = mapped_column(ForeignKey("script_versions.id"))
    data: Mapped[str] = mapped_column(Text, default="{}")

    encounter: Mapped[Encounter] = relationship(back_populates="events")
