"""The review log's query: filters on the summary columns, newest first, a page at a time.

Pages follow one another by key (started_at, id), never by offset, so an encounter that
begins while a reviewer reads page one neither shifts page two nor appears twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, literal, literal_column, or_, select
from sqlalchemy.orm import Session, joinedload

from kiosk.models import Agent, Encounter, NamedPerson, School
from kiosk.protocol import search
from kiosk.protocol.state import Status

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    """What the reviewer asked for, already checked: empty strings mean "any"."""

    school_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    state: str = ""
    channel: str = ""
    document: str = ""
    exigency: str = ""
    outcome: str = ""
    stood_down: str = ""
    late: str = ""
    agency: str = ""
    request_kind: str = ""
    after: tuple[datetime, int] | None = None
    # Keyed digests of the words searched for (kiosk.protocol.search), and the blind index
    # of a person's name: never the words or the name themselves.
    words: search.Query = search.Query(())
    name_index: str | None = None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def narrowed(query: Any, filters: Filters) -> Any:
    """Add each filter the reviewer chose to a select of Encounter."""
    if filters.school_id is not None:
        query = query.where(Encounter.school_id == filters.school_id)
    if filters.date_from is not None:
        query = query.where(Encounter.started_at >= _start_of(filters.date_from))
    if filters.date_to is not None and filters.date_to < date.max:
        # There is no day after the last day there is: it sets no upper bound.
        query = query.where(Encounter.started_at < _start_of(filters.date_to + timedelta(days=1)))
    if filters.state == "ended":
        query = query.where(Encounter.status == Status.RESOLVED.value)
    elif filters.state == "open":
        # The literal inline, as in the partial index's condition (models.encounters
        # OPEN_CONDITION), so both databases walk that index.
        query = query.where(Encounter.status != literal_column(f"'{Status.RESOLVED.value}'"))
    if filters.channel:
        query = query.where(Encounter.channel == filters.channel)
    if filters.document:
        document = func.coalesce(Encounter.doc_confirmed_type, Encounter.doc_first_impression)
        query = query.where(document == filters.document)
    if filters.exigency:
        # "No" includes encounters where no emergency was recorded at all.
        query = query.where(
            Encounter.exigency.is_(True)
            if filters.exigency == "yes"
            else or_(Encounter.exigency.is_(False), Encounter.exigency.is_(None))
        )
    if filters.outcome == "none":
        query = query.where(Encounter.outcome.is_(None))
    elif filters.outcome:
        query = query.where(Encounter.outcome == filters.outcome)
    if filters.stood_down:
        stood = Encounter.stood_down_at.is_not(None)
        query = query.where(stood if filters.stood_down == "yes" else ~stood)
    if filters.late:
        query = query.where(Encounter.acknowledged_late.is_(filters.late == "yes"))
    if filters.agency:
        # Any agent of the encounter, as the desk picked the agency from the list.
        query = query.where(
            select(Agent.id)
            .where(Agent.encounter_id == Encounter.id, Agent.agency_pick == filters.agency)
            .exists()
        )
    if filters.request_kind:
        # request_kinds is a comma-joined set of plain keys; match one whole key.
        kinds = literal(",") + Encounter.request_kinds + literal(",")
        query = query.where(kinds.contains(f",{filters.request_kind},", autoescape=True))
    for condition in search.matching(filters.words):
        query = query.where(condition)
    if filters.name_index is not None:
        query = query.where(
            Encounter.id.in_(
                select(NamedPerson.encounter_id).where(NamedPerson.name_index == filters.name_index)
            )
        )
    return query


def older_than(key: tuple[datetime, int]) -> Any:
    """Encounters after this key, newest first: started earlier, or at the same moment with a
    smaller id. The plain `started_at <=` lets the database walk its index from the key."""
    started, row_id = key
    return and_(
        Encounter.started_at <= started,
        or_(Encounter.started_at < started, Encounter.id < row_id),
    )


def page(db: Session, visible: Any, filters: Filters) -> tuple[list[Encounter], bool]:
    """One page of the log and whether another follows."""
    query = narrowed(visible, filters)
    if filters.after is not None:
        query = query.where(older_than(filters.after))
    rows = list(
        db.scalars(
            query.options(joinedload(Encounter.school))
            .order_by(Encounter.started_at.desc(), Encounter.id.desc())
            .limit(PAGE_SIZE + 1)
        )
    )
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def readable_schools(db: Session, visible_ids: set[int] | None) -> list[School]:
    """The schools the filter offers: only those whose records the user may read."""
    query = select(School).order_by(School.name)
    if visible_ids is not None:
        query = query.where(School.id.in_(visible_ids or {-1}))
    return list(db.scalars(query))
