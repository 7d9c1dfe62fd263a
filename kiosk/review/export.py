"""The review log as a file: CSV or JSON, the same filters and rows as the page.

The file is streamed a chunk of rows at a time, walked by the log's key (started_at, id),
so a district's whole history never sits in memory at once. Each row holds categories,
states, times and a count of the people named; never a name and never free text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import Response, abort, current_app, request, stream_with_context
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk import audit, webdb
from kiosk.auth.policy import requires
from kiosk.clock import now_utc
from kiosk.localtime import zone
from kiosk.models import Encounter, NamedPerson, School, User
from kiosk.office.common import office_user, visible
from kiosk.review import log
from kiosk.review.blueprint import bp
from kiosk.review.forms import ReviewSearchForm
from kiosk.review.views import FILTERS, checked_filters, kept_filters, render_log

CHUNK = 500
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = (
    "public_id",
    "school",
    "started_at_utc",
    "started_at_local",
    "channel",
    "status",
    "outcome",
    "document_first_impression",
    "document_confirmed",
    "exigency",
    "stood_down",
    "first_acknowledged_at_utc",
    "acknowledged_late",
    "people_named",
)


def neutralised(value: str) -> str:
    """Prefix a cell a spreadsheet would run as a formula with a quote, so it reads as text."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _utc(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _query(user: User, filters: log.Filters) -> Any:
    """The log's query for these filters, as columns: no ORM objects pile up in the session."""
    # Counted in the database, so no name is ever loaded; a withdrawn name is not counted.
    people = (
        select(func.count(NamedPerson.id))
        .where(NamedPerson.encounter_id == Encounter.id, NamedPerson.withdrawn_at.is_(None))
        .correlate(Encounter)
        .scalar_subquery()
    )
    return (
        log.narrowed(visible(user), filters)
        .with_only_columns(
            Encounter.id,
            Encounter.public_id,
            School.name,
            School.timezone,
            Encounter.started_at,
            Encounter.channel,
            Encounter.status,
            Encounter.outcome,
            Encounter.doc_first_impression,
            Encounter.doc_confirmed_type,
            Encounter.exigency,
            Encounter.stood_down_at,
            Encounter.first_acknowledged_at,
            Encounter.acknowledged_late,
            people.label("people_named"),
            maintain_column_froms=False,
        )
        .join_from(Encounter, School, Encounter.school_id == School.id)
        .order_by(Encounter.started_at.desc(), Encounter.id.desc())
    )


def _rows(base: Any) -> Iterator[list[Any]]:
    """Every matching row, newest first, CHUNK at a time by key, as lists in COLUMNS order,
    in a session of its own that is closed when the file ends or the download is abandoned."""
    with webdb.database().session_factory() as db:
        yield from _chunks(db, base)


def _chunks(db: Session, base: Any) -> Iterator[list[list[Any]]]:
    connection = db.connection()
    zones: dict[str, Any] = {}
    after: tuple[datetime, int] | None = None
    while True:
        query = base
        if after is not None:
            query = query.where(log.older_than(after))
        chunk = connection.execute(query.limit(CHUNK)).all()
        if not chunk:
            return
        yield [
            [
                row.public_id,
                row.name,
                _utc(row.started_at),
                row.started_at.astimezone(
                    zones.get(row.timezone) or zones.setdefault(row.timezone, zone(row.timezone))
                ).isoformat(),
                row.channel,
                row.status,
                row.outcome,
                row.doc_first_impression,
                row.doc_confirmed_type,
                row.exigency,
                row.stood_down_at is not None,
                _utc(row.first_acknowledged_at),
                bool(row.acknowledged_late),
                int(row.people_named),
            ]
            for row in chunk
        ]
        if len(chunk) < CHUNK:
            return
        after = (chunk[-1].started_at, chunk[-1].id)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, str):
        return neutralised(value)
    return value


def _csv(chunks: Iterator[list[list[Any]]]) -> Iterator[str]:
    """The header, then one piece of text per chunk of rows (not per row: fewer, larger
    writes for the server)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    for chunk in chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_cell(value) for value in row] for row in chunk)
        yield buffer.getvalue()


def _json(chunks: Iterator[list[list[Any]]]) -> Iterator[str]:
    separator = "\n"
    yield "["
    for chunk in chunks:
        pieces = []
        for row in chunk:
            # The same neutralising as the CSV: a JSON file is often opened in a spreadsheet.
            clean = {
                name: neutralised(value) if isinstance(value, str) else value
                for name, value in zip(COLUMNS, row, strict=True)
            }
            pieces.append(separator + json.dumps(clean, ensure_ascii=False))
            separator = ",\n"
        if pieces:
            yield "".join(pieces)
    yield "\n]\n"


def _export(kind: str) -> Any:
    db = webdb.session()
    user = office_user()
    form, filters = checked_filters(db, user)
    if filters is None:
        # No file whose rows ignore a filter: the page names what to correct.
        return render_log(
            form, ReviewSearchForm(formdata=None), kept_filters(request.args), None
        ), 400
    # The whole history, whatever page the reviewer was reading.
    filters = log.Filters(**{**filters.__dict__, "after": None})
    # Built now, while the user is loaded: the rows are read after the response has begun.
    query = _query(user, filters)
    used = {name: value for name in FILTERS if (value := request.args.get(name))}
    # Recorded in a short write of its own before the first byte is sent.
    with webdb.unit_of_work() as writer:
        audit.record(
            writer,
            current_app.config["AUDIT_KEY"],
            now_utc(),
            actor=f"user:{user.public_id}",
            action="review.export",
            subject="review-log",
            details={"format": kind, "filters": used},
        )
    day = now_utc().strftime("%Y-%m-%d")
    if kind == "csv":
        body, mimetype = _csv(_rows(query)), "text/csv"
    elif kind == "json":
        body, mimetype = _json(_rows(query)), "application/json"
    else:
        abort(404)
    response = Response(stream_with_context(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="review-log-{day}.{kind}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/export.csv", endpoint="export_csv")
@requires("encounter.read")
def export_csv() -> Any:
    """The filtered log as CSV, one row per encounter."""
    return _export("csv")


@bp.get("/export.json", endpoint="export_json")
@requires("encounter.read")
def export_json() -> Any:
    """The filtered log as a JSON array of objects with the CSV's fields."""
    return _export("json")
