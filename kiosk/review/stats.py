"""Counts for the statistics page: each one a GROUP BY over the encounters' summary columns,
so the page costs a few queries however many encounters there are.

Every count is of encounters (an encounter with two agencies counts once under each). No
name, free text or record id leaves this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Numeric, case, cast, distinct, func, literal, select
from sqlalchemy.orm import Session

from kiosk.models import Agent, Encounter, School
from kiosk.protocol.documents import DOC_LABELS
from kiosk.review.log import Filters, narrowed
from kiosk.vocabulary import AGENCIES, OUTCOMES, REQUEST_KINDS

NOT_RECORDED = "Not recorded"
DOCUMENTS = tuple((kind.value, label) for kind, label in DOC_LABELS.items())

# Time to acknowledge, from the first alert accepted for delivery to the first
# acknowledgement: (key, label, upper bound in seconds, exclusive).
ACK_BUCKETS: tuple[tuple[str, str, float], ...] = (
    ("lt1", "Under 1 minute", 60),
    ("1to2", "1 to 2 minutes", 120),
    ("2to5", "2 to 5 minutes", 300),
    ("5to10", "5 to 10 minutes", 600),
    ("10to30", "10 to 30 minutes", 1800),
    ("gt30", "30 minutes or more", math.inf),
)
NEVER = ("never", "Not acknowledged")
NOT_ALERTED = "not_alerted"


@dataclass(frozen=True)
class Count:
    """One row of a table: what is counted, its label, and how many."""

    key: str
    label: str
    count: int


@dataclass(frozen=True)
class AckTimes:
    """The time-to-acknowledge distribution, with its median and 90th percentile."""

    buckets: list[Count]
    acknowledged: int
    median_seconds: float | None
    p90_seconds: float | None
    not_alerted: int


def scoped(query: Any, school_ids: set[int] | None, filters: Filters) -> Any:
    """Limit a select over Encounter to the user's schools and the chosen period and school."""
    if school_ids is not None:
        query = query.where(Encounter.school_id.in_(school_ids or {-1}))
    return narrowed(query, filters)


def labelled(rows: Any, choices: tuple[tuple[str, str], ...] | Any) -> list[Count]:
    """Order counted (key, n) rows as the vocabulary lists them, each known key shown even at
    zero, with anything unrecorded (NULL or empty) last."""
    found = {(key or ""): int(n) for key, n in rows}
    result = [Count(key, label, found.pop(key, 0)) for key, label in choices]
    missing = found.pop("", 0)
    # A value the vocabulary no longer lists is still counted, under its stored key.
    result += [
        Count(key, key.replace("_", " ").capitalize(), n) for key, n in sorted(found.items())
    ]
    if missing:
        result.append(Count("", NOT_RECORDED, missing))
    return result


def total(db: Session, school_ids: set[int] | None, filters: Filters) -> int:
    return int(db.scalar(scoped(select(func.count(Encounter.id)), school_ids, filters)) or 0)


def by_school(db: Session, school_ids: set[int] | None, filters: Filters) -> list[Count]:
    """Every school the user may read, with its count (zero included)."""
    counted = (
        scoped(
            select(Encounter.school_id, func.count(Encounter.id).label("n")), school_ids, filters
        )
        .group_by(Encounter.school_id)
        .subquery()
    )
    query = (
        select(School.public_id, School.name, func.coalesce(counted.c.n, 0))
        .outerjoin(counted, counted.c.school_id == School.id)
        .order_by(School.name)
    )
    if school_ids is not None:
        query = query.where(School.id.in_(school_ids or {-1}))
    if filters.school_id is not None:
        query = query.where(School.id == filters.school_id)
    return [Count(key, name, int(n)) for key, name, n in db.execute(query)]


def month_of(db: Session) -> ColumnElement[str]:
    """The UTC month an encounter started in, as YYYY-MM, in the database's own terms."""
    if db.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Encounter.started_at), "YYYY-MM")
    return func.strftime("%Y-%m", Encounter.started_at)


def by_month(db: Session, school_ids: set[int] | None, filters: Filters) -> list[Count]:
    """Months that had encounters, oldest first (UTC months, as the date filters are)."""
    month = month_of(db).label("month")
    query = scoped(select(month, func.count(Encounter.id)), school_ids, filters)
    rows = db.execute(query.group_by(month).order_by(month))
    return [Count(key, key, int(n)) for key, n in rows]


def by_column(
    db: Session,
    school_ids: set[int] | None,
    filters: Filters,
    column: Any,
    choices: tuple[tuple[str, str], ...] | Any,
) -> list[Count]:
    query = scoped(select(column, func.count(Encounter.id)), school_ids, filters)
    return labelled(db.execute(query.group_by(column)), choices)


def by_outcome(db: Session, school_ids: set[int] | None, filters: Filters) -> list[Count]:
    return by_column(db, school_ids, filters, Encounter.outcome, OUTCOMES)


def by_document(
    db: Session, school_ids: set[int] | None, filters: Filters
) -> list[tuple[str, int, int]]:
    """Each document type: how many encounters the desk first took it for, and how many the
    district office confirmed as it. Unrecorded ones are last."""
    first = by_column(db, school_ids, filters, Encounter.doc_first_impression, DOCUMENTS)
    confirmed = by_column(db, school_ids, filters, Encounter.doc_confirmed_type, DOCUMENTS)
    confirmed_by_key = {c.key: c.count for c in confirmed}
    rows = [(c.label, c.count, confirmed_by_key.pop(c.key, 0)) for c in first if c.key]
    labels = {c.key: c.label for c in confirmed}
    rows += [(labels[key], 0, n) for key, n in confirmed_by_key.items() if key]
    unrecorded_first = next((c.count for c in first if not c.key), 0)
    rows.append((NOT_RECORDED, unrecorded_first, confirmed_by_key.get("", 0)))
    return rows


def by_request_kind(db: Session, school_ids: set[int] | None, filters: Filters) -> list[Count]:
    """Request kinds are a comma-joined set on each encounter: one conditional sum per kind,
    all in one query (an encounter asking for two things counts under both)."""
    padded = literal(",") + Encounter.request_kinds + literal(",")
    sums = [
        func.coalesce(func.sum(case((padded.like(f"%,{key},%"), 1), else_=0)), 0)
        for key, _ in REQUEST_KINDS
    ]
    none = func.coalesce(func.sum(case((Encounter.request_kinds == "", 1), else_=0)), 0)
    row = db.execute(scoped(select(*sums, none), school_ids, filters)).one()
    counts = [
        Count(key, label, int(n)) for (key, label), n in zip(REQUEST_KINDS, row[:-1], strict=True)
    ]
    if row[-1]:
        counts.append(Count("", NOT_RECORDED, int(row[-1])))
    return counts


def by_agency(db: Session, school_ids: set[int] | None, filters: Filters) -> list[Count]:
    """Encounters by the agency the desk picked for each agent; those with no agency picked for
    any agent are counted as not recorded."""
    query = scoped(
        select(Agent.agency_pick, func.count(distinct(Agent.encounter_id)))
        .join(Encounter, Agent.encounter_id == Encounter.id)
        .where(Agent.agency_pick.is_not(None), Agent.agency_pick != ""),
        school_ids,
        filters,
    ).group_by(Agent.agency_pick)
    counts = labelled(db.execute(query), AGENCIES)
    picked = (
        select(Agent.id)
        .where(Agent.encounter_id == Encounter.id)
        .where(Agent.agency_pick.is_not(None), Agent.agency_pick != "")
        .exists()
    )
    unrecorded = db.scalar(
        scoped(select(func.count(Encounter.id)).where(~picked), school_ids, filters)
    )
    if unrecorded:
        counts.append(Count("", NOT_RECORDED, int(unrecorded)))
    return counts


def seconds_to_acknowledge(db: Session) -> ColumnElement[float]:
    """Seconds from the first alert accepted for delivery to the first acknowledgement."""
    sent, acked = Encounter.first_alert_sent_at, Encounter.first_acknowledged_at
    # Rounded to the millisecond on both databases: SQLite's Julian days are floats, and
    # a wait of exactly 60 s would otherwise come out as 59.99995 and fall a bucket short.
    if db.get_bind().dialect.name == "postgresql":
        return func.round(cast(func.extract("epoch", acked - sent), Numeric), 3)
    return func.round((func.julianday(acked) - func.julianday(sent)) * 86400.0, 3)


def ack_times(db: Session, school_ids: set[int] | None, filters: Filters) -> AckTimes:
    """The distribution of times to acknowledge over encounters whose alert was sent, by
    bucket, plus the median and 90th percentile of those acknowledged (nearest rank)."""
    seconds = seconds_to_acknowledge(db)
    sent = Encounter.first_alert_sent_at.is_not(None)
    acked = Encounter.first_acknowledged_at.is_not(None)
    whens = [(seconds < limit, key) for key, _, limit in ACK_BUCKETS if limit != math.inf]
    bucket = case((~sent, NOT_ALERTED), (~acked, NEVER[0]), *whens, else_=ACK_BUCKETS[-1][0]).label(
        "bucket"
    )
    rows = db.execute(
        scoped(select(bucket, func.count(Encounter.id)), school_ids, filters).group_by(bucket)
    )
    found = {key: int(n) for key, n in rows}
    buckets = [Count(key, label, found.get(key, 0)) for key, label, _ in ACK_BUCKETS]
    buckets.append(Count(NEVER[0], NEVER[1], found.get(NEVER[0], 0)))
    acknowledged = sum(c.count for c in buckets[:-1])
    median, p90 = percentiles(db, school_ids, filters, acknowledged, (0.5, 0.9))
    return AckTimes(
        buckets=buckets,
        acknowledged=acknowledged,
        median_seconds=median,
        p90_seconds=p90,
        not_alerted=found.get(NOT_ALERTED, 0),
    )


def percentiles(
    db: Session,
    school_ids: set[int] | None,
    filters: Filters,
    n: int,
    fractions: tuple[float, ...],
) -> list[float | None]:
    """Nearest-rank percentiles of the acknowledged times: the values at ranks ceil(p*n),
    numbered by the database in one sorted pass (the same answer on both databases)."""
    if n == 0:
        return [None for _ in fractions]
    seconds = seconds_to_acknowledge(db)
    ranked = scoped(
        select(
            seconds.label("seconds"),
            func.row_number().over(order_by=(seconds, Encounter.id)).label("rank"),
        ).where(
            Encounter.first_alert_sent_at.is_not(None),
            Encounter.first_acknowledged_at.is_not(None),
        ),
        school_ids,
        filters,
    ).subquery()
    ranks = [max(math.ceil(fraction * n), 1) for fraction in fractions]
    query = select(ranked.c.rank, ranked.c.seconds).where(ranked.c.rank.in_(set(ranks)))
    found = {rank: value for rank, value in db.execute(query)}
    # An acknowledgement can be recorded just before the send is (the office saw the
    # dashboard first): that is no wait at all, not a negative one.
    return [max(float(found[rank]), 0.0) if rank in found else None for rank in ranks]
