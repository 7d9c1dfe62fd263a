"""The statistics page: counts by school, month, agency, request kind, document type and
outcome, and the time-to-acknowledge distribution, for the schools a user may read."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from kiosk.db import writing
from kiosk.models import Agent, Encounter, NamedPerson
from kiosk.webdb import database
from tests.conftest import deliver, tap_start, the_encounter
from tests.test_policy import LINCOLN, RIVERSIDE, form_token, login
from tests.test_review_log import DANA, JORDAN, reviewer, school_id, school_public_id

BASE = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
ROW = re.compile(r'<tr><th scope="row">([^<]*)</th>((?:<td class="number">\d+</td>)+)</tr>')
NUMBER = re.compile(r'<td class="number">(\d+)</td>')


def add(app: Flask, school: str = LINCOLN, agencies: tuple[str, ...] = (), **columns: Any) -> int:
    """Insert an encounter as the desk and office would have left it, with its agents."""
    columns.setdefault("started_at", BASE)
    with writing(), database(app).session_factory() as session, session.begin():
        encounter = Encounter(school_id=school_id(app, school), **columns)
        session.add(encounter)
        session.flush()
        for position, agency in enumerate(agencies, start=1):
            session.add(Agent(encounter_id=encounter.id, position=position, agency_pick=agency))
        return encounter.id


def table(page: str, table_id: str) -> dict[str, list[int]]:
    """The data table beside a chart, as {row label: [counts]}."""
    start = page.index(f'id="{table_id}-table"')
    body = page[start : page.index("</table>", start)]
    return {
        html.unescape(label): [int(n) for n in NUMBER.findall(cells)]
        for label, cells in ROW.findall(body)
    }


def counts(page: str, table_id: str) -> dict[str, int]:
    return {label: values[0] for label, values in table(page, table_id).items()}


def seed(app: Flask) -> None:
    add(
        app,
        agencies=("hsi",),
        outcome="left",
        request_kinds="student_info,entry",
        doc_first_impression="administrative_warrant",
        doc_confirmed_type="administrative_warrant",
    )
    add(
        app,
        agencies=("hsi", "ice_ero"),
        outcome="left",
        request_kinds="student_access",
        doc_first_impression="unsure",
        doc_confirmed_type="judicial_warrant",
        started_at=BASE + timedelta(days=3),
    )
    add(app, outcome="waited", request_kinds="student_info", doc_first_impression="none")
    add(app, RIVERSIDE, agencies=("fbi",), outcome="left", request_kinds="staff")
    add(app, RIVERSIDE, started_at=datetime(2026, 10, 20, 9, 0, tzinfo=UTC))


def test_the_counts_match_the_seeded_encounters(app: Flask, district: dict[str, Any]) -> None:
    seed(app)
    # A name recorded in an encounter never reaches the page.
    with writing(), database(app).session_factory() as session, session.begin():
        first = session.query(Encounter).order_by(Encounter.id).first()
        assert first is not None
        session.add(
            NamedPerson(encounter_id=first.id, position=1, name="Ada Quill", name_index="x" * 64)
        )
    page = reviewer(app).get("/review/statistics").get_data(as_text=True)
    assert "Encounters in this period: <strong>5</strong>" in page
    assert counts(page, "by-school") == {LINCOLN: 3, RIVERSIDE: 2}
    assert counts(page, "by-month") == {"2026-10": 1, "2026-11": 4}
    agencies = counts(page, "by-agency")
    assert agencies["HSI"] == 2
    assert agencies["ICE ERO"] == 1
    assert agencies["FBI"] == 1
    assert agencies["CBP / Border Patrol"] == 0
    assert agencies["Not recorded"] == 2
    kinds = counts(page, "by-request")
    assert kinds["A student's records or information"] == 2
    assert kinds["To enter areas that are not public"] == 1
    assert kinds["A student: to see, speak with or take them"] == 1
    assert kinds["A staff member"] == 1
    assert kinds["Not recorded"] == 1
    outcomes = counts(page, "by-outcome")
    assert outcomes["They left"] == 3
    assert outcomes["They are waiting"] == 1
    assert outcomes["Not recorded"] == 1
    documents = table(page, "by-document")
    assert documents["Administrative warrant"] == [1, 1]
    assert documents["Warrant signed by a judge"] == [0, 1]
    assert documents["Not sure yet"] == [1, 0]
    assert documents["No document shown"] == [1, 0]
    assert documents["Not recorded"] == [2, 3]
    assert "Ada Quill" not in page
    # Each chart is drawn as SVG beside its table, with no inline style or script.
    assert page.count('<svg class="chart"') == 7
    assert "style=" not in page
    assert "<script>" not in page


def test_the_period_and_school_narrow_every_count(app: Flask, district: dict[str, Any]) -> None:
    seed(app)
    client = reviewer(app)
    lincoln = school_public_id(app, LINCOLN)
    page = client.get(
        f"/review/statistics?school={lincoln}&date_from=2026-11-01&date_to=2026-11-03"
    ).get_data(as_text=True)
    assert "Encounters in this period: <strong>2</strong>" in page
    assert counts(page, "by-school") == {LINCOLN: 2}
    assert counts(page, "by-month") == {"2026-11": 2}
    assert counts(page, "by-outcome")["They left"] == 1
    assert counts(page, "by-agency")["HSI"] == 1


def test_a_wrong_filter_is_shown_next_to_its_field_with_what_was_typed(
    app: Flask, district: dict[str, Any]
) -> None:
    seed(app)
    client = reviewer(app)
    page = client.get("/review/statistics?date_from=2026-11-05&date_to=2026-11-01").get_data(
        as_text=True
    )
    assert 'id="date_to-error">This date is before the first date.' in page
    assert 'value="2026-11-05"' in page and 'value="2026-11-01"' in page
    assert "Encounters in this period" not in page
    page = client.get("/review/statistics?date_from=yesterday").get_data(as_text=True)
    assert 'id="date_from-error"' in page and 'value="yesterday"' in page


def test_a_designee_counts_only_their_own_school(app: Flask, district: dict[str, Any]) -> None:
    seed(app)
    jordan = login(app, JORDAN, "demo-password")
    page = jordan.get("/review/statistics").get_data(as_text=True)
    assert counts(page, "by-school") == {RIVERSIDE: 2}
    assert "Encounters in this period: <strong>2</strong>" in page
    assert LINCOLN not in page
    # Another school's id in the address is refused, not counted.
    lincoln = school_public_id(app, LINCOLN)
    page = jordan.get(f"/review/statistics?school={lincoln}").get_data(as_text=True)
    assert 'id="school-error"' in page
    assert "Encounters in this period" not in page


def test_the_time_to_acknowledge_distribution_and_its_median(
    app: Flask, district: dict[str, Any]
) -> None:
    # 60 s exactly is a minute: it is not "under 1 minute" on either database.
    for seconds in (30, 60, 200, 400, 700, 2000):
        add(
            app,
            first_alert_sent_at=BASE,
            first_acknowledged_at=BASE + timedelta(seconds=seconds),
            status="acknowledged",
        )
    add(app, first_alert_sent_at=BASE)  # never acknowledged
    add(app)  # no alert recorded as sent
    page = reviewer(app).get("/review/statistics").get_data(as_text=True)
    assert counts(page, "ack-times") == {
        "Under 1 minute": 1,
        "1 to 2 minutes": 1,
        "2 to 5 minutes": 1,
        "5 to 10 minutes": 1,
        "10 to 30 minutes": 1,
        "30 minutes or more": 1,
        "Not acknowledged": 1,
    }
    # Nearest rank over the six acknowledged: the 3rd (200 s) and the 6th (2000 s).
    assert '<dd id="ack-median">3 min 20 s</dd>' in page
    assert '<dd id="ack-p90">33 min 20 s</dd>' in page
    assert '<dd id="ack-not-alerted">1</dd>' in page


def test_an_alert_acknowledged_through_the_office_counts_under_a_minute(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    assert tap_start(kiosk_client).status_code == 302
    deliver(app)
    public_id = the_encounter(app).public_id
    dana = login(app, DANA, "demo-password")
    response = dana.post(
        f"/office/encounters/{public_id}/acknowledge", data={"csrf_token": form_token(app, dana)}
    )
    assert response.status_code == 302
    assert the_encounter(app).first_acknowledged_at is not None
    page = dana.get("/review/statistics").get_data(as_text=True)
    ack = counts(page, "ack-times")
    assert ack["Under 1 minute"] == 1
    assert ack["Not acknowledged"] == 0
    assert counts(page, "by-school") == {LINCOLN: 1}
    # The office menu leads here.
    assert 'href="/review/statistics"' in dana.get("/office/").get_data(as_text=True)
