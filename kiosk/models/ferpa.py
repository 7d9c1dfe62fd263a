"""FERPA records: students, the matches of named people to them, and the 99.32 request
records kept in each student's file."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiosk.clock import now_utc
from kiosk.models.base import Base, UTCDateTime, new_public_id
from kiosk.models.places import School
from kiosk.models.sealed import SealedText, register


@register
class Student(Base):
    """An enrolled student, as the district official recorded them: the name sealed, found
    through its blind index (the same keyed hash as NamedPerson.name_index)."""

    __tablename__ = "students"
    __seal_identity__ = ("public_id",)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    name: Mapped[str] = mapped_column(SealedText(120))
    name_index: Mapped[str] = mapped_column(String(64), index=True)
    # The school's own student number, if the official has it.
    local_id: Mapped[str | None] = mapped_column(String(40))
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    school: Mapped[School] = relationship()


class PersonMatch(Base):
    """What a district official decided a named person is. Never edited: a new decision adds
    a row and marks the one before it superseded, so the history stays."""

    __tablename__ = "person_matches"

    id: Mapped[int] = mapped_column(primary_key=True)
    named_person_id: Mapped[int] = mapped_column(ForeignKey("named_people.id"), index=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    # student, not_student, not_enrolled or unknown (kiosk.ferpa.operations.OUTCOMES).
    outcome: Mapped[str] = mapped_column(String(20))
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id"), index=True)
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    student: Mapped[Student | None] = relationship()


@register
class RequestRecord(Base):
    """The 99.32 record of one request for one student's information.

    It copies what it needs from the encounter when it is made, so it outlives the
    encounter's redaction under retention and follows the student's records instead.
    """

    __tablename__ = "request_records"
    __seal_identity__ = ("public_id",)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id"), index=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("person_matches.id"), unique=True)
    # A reference only: the record stands on its own copies below.
    encounter_public_id: Mapped[str] = mapped_column(String(32), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(20))
    request_kinds: Mapped[str] = mapped_column(String(200), default="")
    document_type: Mapped[str | None] = mapped_column(String(30))
    # Who asked, as the desk recorded the agents (names, badges, titles), and their agencies.
    requester: Mapped[str] = mapped_column(SealedText(2000))
    agency: Mapped[str] = mapped_column(String(400), default="")
    # The stated interest or legal basis: copied from the request and document, editable.
    basis: Mapped[str] = mapped_column(SealedText(4000))
    released: Mapped[str] = mapped_column(SealedText(4000))
    exception: Mapped[str] = mapped_column(String(40))
    updated_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the match it came from is changed: the record leaves the student's file.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Advance notice to the parent (99.31(a)(9)(ii)), for subpoenas and court orders.
    notice_required: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    notice_due_on: Mapped[date | None] = mapped_column(Date, index=True)
    notice_sent_on: Mapped[date | None] = mapped_column(Date)
    notice_method: Mapped[str | None] = mapped_column(String(20))
    notice_recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    notice_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set only by counsel: a court or the issuing agency ordered non-disclosure.
    nondisclosure: Mapped[bool] = mapped_column(Boolean, default=False)
    nondisclosure_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    nondisclosure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    student: Mapped[Student] = relationship()
    school: Mapped[School] = relationship()
