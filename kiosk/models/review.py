"""What the review log adds to an encounter: its search terms and counsel's notes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.clock import now_utc
from kiosk.models.base import Base, UTCDateTime, new_public_id
from kiosk.models.sealed import SealedText, register


class SearchTerm(Base):
    """One keyed digest of a word, or of the start of a word, found in an encounter's agent
    names, agencies or stated purpose (kiosk.protocol.search): the words themselves are
    never stored, so sealed text stays sealed while the log can still be searched."""

    __tablename__ = "search_terms"
    __table_args__ = (
        UniqueConstraint("encounter_id", "digest"),
        Index("ix_search_terms_digest_encounter_id", "digest", "encounter_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"))
    digest: Mapped[str] = mapped_column(String(32))


@register
class PrivilegedNote(Base):
    """A note by the district's counsel on an encounter: privileged, so shown only to
    counsel, and kept out of exports, reports and every other copy of the record."""

    __tablename__ = "privileged_notes"
    __seal_identity__ = ("public_id",)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    author_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(SealedText(4000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
