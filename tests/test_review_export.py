"""The review log as CSV and JSON: the log's filters and rows, streamed, audited, safe to open
in a spreadsheet, and never a name."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select, update

from kiosk.clock import now_utc
from kiosk.db import writing
from kiosk.models import AuditEntry, Encounter, NamedPerson, School
from kiosk.review import export
from kiosk.review.export import COLUMNS, neutralised
from kiosk.webdb import database
from tests.test_policy import LINCOLN, RIVERSIDE, create_user, login
from tests.test_review_log import (
    BASE,
    DANA,
    JORDAN,
    add,
    reviewer,
    school_id,
    school_public_id,
    shown,
)


def csv_rows(client: FlaskClient, query: str = "") -> list[dict[str, str]]:
    response = client.get(f"/review/export.csv{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_streamed
    assert response.headers["Cache-Control"] == "no-store"
    day = now_utc().strftime("%Y-%m-%d")
    assert response.headers["Content-Disposition"] == f'attachment; filename="review-log-{day}.csv"'
    body = response.get_data(as_text=True)
    # A streamed response ends its request (and its database session) only when closed.
    response.close()
    reader = csv.DictReader(io.StringIO(body))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def json_rows(client: FlaskClient, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"/review/export.json{query}")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].endswith('.json"')
    rows = json.loads(response.get_data(as_text=True))
    response.close()
    assert isinstance(rows, list)
    return rows


def name_people(app: Flask, public_id: str, names: list[str], withdrawn: int = 0) -> None:
    with writing(), database(app).session_factory() as session, session.begin():
        encounter = session.scalar(select(Encounter).where(Encounter.public_id == public_id))
        assert encounter is not None
        for position, name in enumerate(names, start=1):
            session.add(
                NamedPerson(
                    encounter_id=encounter.id,
                    position=position,
                    name=name,
                    name_index=f"index-{position}",
                    withdrawn_at=BASE if position <= withdrawn else None,
                )
            )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Lincoln Elementary", "Lincoln Elementary"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_turned_into_text(value: str, expected: str) -> None:
    assert neutralised(value) == expected


def test_the_files_hold_the_rows_and_fields_the_log_shows(
    app: Flask, district: dict[str, Any]
) -> None:
    acknowledged = BASE + timedelta(minutes=3)
    ended = add(
        app,
        started_at=BASE,
        status="resolved",
        outcome="left",
        channel="phone",
        doc_first_impression="administrative_warrant",
        doc_confirmed_type="judicial_warrant",
        exigency=True,
        first_acknowledged_at=acknowledged,
        acknowledged_late=True,
    )
    older = add(app, RIVERSIDE, started_at=BASE - timedelta(days=3))
    client = reviewer(app)
    rows = csv_rows(client)
    assert [r["public_id"] for r in rows] == shown(client) == [ended, older]
    assert rows[0] == {
        "public_id": ended,
        "school": LINCOLN,
        "started_at_utc": "2026-11-02T15:00:00Z",
        "started_at_local": rows[0]["started_at_local"],
        "channel": "phone",
        "status": "resolved",
        "outcome": "left",
        "document_first_impression": "administrative_warrant",
        "document_confirmed": "judicial_warrant",
        "exigency": "yes",
        "stood_down": "no",
        "first_acknowledged_at_utc": "2026-11-02T15:03:00Z",
        "acknowledged_late": "yes",
        "people_named": "0",
    }
    local = datetime.fromisoformat(rows[0]["started_at_local"])
    assert local == BASE and local.utcoffset() != timedelta(0)
    assert rows[1]["outcome"] == "" and rows[1]["exigency"] == ""
    as_json = json_rows(client)
    assert [r["public_id"] for r in as_json] == [ended, older]
    assert as_json[0]["exigency"] is True and as_json[1]["exigency"] is None
    assert as_json[0]["people_named"] == 0
    # The same filters as the log, including the school filter.
    for query in ("?state=ended", "?outcome=none", f"?school={school_public_id(app, RIVERSIDE)}"):
        assert [r["public_id"] for r in csv_rows(client, query)] == shown(client, query)
        assert [r["public_id"] for r in json_rows(client, query)] == shown(client, query)


def test_the_log_page_offers_both_files_with_its_filters(
    app: Flask, district: dict[str, Any]
) -> None:
    add(app)
    page = reviewer(app).get("/review/?state=ended&channel=phone").get_data(as_text=True)
    assert 'href="/review/export.csv?state=ended&amp;channel=phone"' in page
    assert 'href="/review/export.json?state=ended&amp;channel=phone"' in page
    assert "Download CSV" in page and "Download JSON" in page


def test_an_invalid_filter_is_refused_with_its_message_and_no_file(
    app: Flask, district: dict[str, Any]
) -> None:
    add(app)
    client = reviewer(app)
    for kind in ("csv", "json"):
        response = client.get(f"/review/export.{kind}?date_from=2026-13-40&state=ended")
        assert response.status_code == 400
        assert "Content-Disposition" not in response.headers
        assert "Not a valid date value." in response.get_data(as_text=True)


def test_another_schools_designee_gets_none_of_its_rows(
    app: Flask, district: dict[str, Any]
) -> None:
    lincoln = add(app)
    riverside = add(app, RIVERSIDE)
    jordan = login(app, JORDAN, "demo-password")
    for rows in (csv_rows(jordan), json_rows(jordan)):
        assert [r["public_id"] for r in rows] == [riverside]
        assert all(r["school"] == RIVERSIDE for r in rows)
    other = jordan.get(f"/review/export.csv?school={school_public_id(app, LINCOLN)}")
    assert other.status_code == 400
    assert lincoln not in other.get_data(as_text=True)
    dana = login(app, DANA, "demo-password")
    assert [r["public_id"] for r in csv_rows(dana)] == [lincoln]


@pytest.mark.parametrize("role", ["admin", "front_desk"])
def test_admins_and_the_front_desk_are_refused(
    app: Flask, district: dict[str, Any], role: str
) -> None:
    add(app)
    if role == "admin":
        client = login(app, "admin@demo-district.example", "demo-password")
    else:
        create_user(app, "desk@district.test", role, LINCOLN)
        client = login(app, "desk@district.test")
    for kind in ("csv", "json"):
        assert client.get(f"/review/export.{kind}").status_code == 403


def test_a_visitor_not_signed_in_is_sent_to_sign_in(app: Flask, district: dict[str, Any]) -> None:
    for kind in ("csv", "json"):
        response = app.test_client().get(f"/review/export.{kind}")
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_a_school_name_written_as_a_formula_arrives_as_text(
    app: Flask, district: dict[str, Any]
) -> None:
    formula = '=HYPERLINK("http://x")'
    add(app)
    with writing(), database(app).session_factory() as session, session.begin():
        session.execute(update(School).where(School.name == LINCOLN).values(name=formula))
    client = reviewer(app)
    assert csv_rows(client)[0]["school"] == "'" + formula
    assert json_rows(client)[0]["school"] == "'" + formula


def test_the_people_named_are_counted_and_never_named(app: Flask, district: dict[str, Any]) -> None:
    three = add(app, started_at=BASE)
    none = add(app, started_at=BASE - timedelta(hours=1))
    name_people(app, three, ["Maria Alvarez", "Tomas Alvarez", "Ana Ruiz", "Luis Ruiz"], 1)
    client = reviewer(app)
    counts = {r["public_id"]: r["people_named"] for r in csv_rows(client)}
    assert counts == {three: "3", none: "0"}
    assert {r["public_id"]: r["people_named"] for r in json_rows(client)} == {three: 3, none: 0}
    for kind in ("csv", "json"):
        with client.get(f"/review/export.{kind}") as response:
            body = response.get_data(as_text=True)
        assert "Alvarez" not in body and "Ruiz" not in body


def test_every_export_is_audited_with_its_format_and_filters(
    app: Flask, district: dict[str, Any]
) -> None:
    add(app)
    create_user(app, "reviewer@district.test", "reviewer")
    client = login(app, "reviewer@district.test")
    csv_rows(client, "?state=ended&channel=phone")
    json_rows(client)
    client.get("/review/export.csv?date_from=nonsense")
    with database(app).session_factory() as session:
        entries = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "review.export")
                .order_by(AuditEntry.seq)
            )
        )
    # A refused filter made no file, so no export is recorded for it.
    assert [json.loads(e.details) for e in entries] == [
        {"filters": {"channel": "phone", "state": "ended"}, "format": "csv"},
        {"filters": {}, "format": "json"},
    ]
    assert all(e.actor.startswith("user:") for e in entries)
    assert all("Test reviewer" not in e.details for e in entries)


@pytest.mark.slow
def test_a_large_export_streams_every_row(app: Flask, district: dict[str, Any]) -> None:
    lincoln = school_id(app, LINCOLN)
    total = 3_000
    with writing(), database(app).session_factory() as session, session.begin():
        session.execute(
            insert(Encounter.__table__),
            [
                {
                    "school_id": lincoln,
                    # Pairs share a start time, so the chunks must break ties by id.
                    "started_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n // 2),
                }
                for n in range(total)
            ],
        )
    client = reviewer(app)
    response = client.get("/review/export.csv")
    assert response.is_streamed
    chunks = list(response.response)
    response.close()
    # The header, then one piece per chunk of rows: the file was never built whole.
    assert len(chunks) == 1 + -(-total // export.CHUNK)
    assert max(len(c) for c in chunks) < 200 * export.CHUNK
    rows = list(
        csv.DictReader(
            io.StringIO("".join(c if isinstance(c, str) else c.decode() for c in chunks))
        )
    )
    assert len(rows) == total == len({r["public_id"] for r in rows})
    started = [r["started_at_utc"] for r in rows]
    assert started == sorted(started, reverse=True)
    assert len(json_rows(client)) == total
