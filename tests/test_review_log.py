"""The review log: every encounter a reviewer may read, open or ended, filtered and paged."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.db import writing
from kiosk.models import Agent, Encounter, School
from kiosk.review.forms import make_cursor, parse_cursor
from kiosk.webdb import database
from tests.conftest import deliver, tap_start, the_encounter
from tests.test_policy import LINCOLN, RIVERSIDE, create_user, form_token, login

DANA = "dana.reyes@demo-district.example"  # designee, Lincoln Elementary
JORDAN = "jordan.kim@demo-district.example"  # designee, Riverside Middle
ROW = re.compile(r'<tr data-id="([^"]+)">')
NEXT = re.compile(r'<a href="([^"]+)" rel="next"')
BASE = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def school_id(app: Flask, name: str) -> int:
    with database(app).session_factory() as session:
        found = session.scalar(select(School.id).where(School.name == name))
        assert found is not None
        return found


def school_public_id(app: Flask, name: str) -> str:
    with database(app).session_factory() as session:
        found = session.scalar(select(School.public_id).where(School.name == name))
        assert found is not None
        return found


def add(app: Flask, school: str = LINCOLN, **columns: Any) -> str:
    """Record an encounter as the desk and office would have left it; return its public id."""
    columns.setdefault("started_at", BASE)
    with writing(), database(app).session_factory() as session, session.begin():
        encounter = Encounter(school_id=school_id(app, school), **columns)
        session.add(encounter)
        session.flush()
        return encounter.public_id


def reviewer(app: Flask) -> FlaskClient:
    create_user(app, "reviewer@district.test", "reviewer")
    return login(app, "reviewer@district.test")


def shown(client: FlaskClient, query: str = "") -> list[str]:
    response = client.get(f"/review/{query}")
    assert response.status_code == 200
    return ROW.findall(response.get_data(as_text=True))


def test_an_ended_encounter_leaves_the_open_list_but_stays_in_the_log(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    assert tap_start(kiosk_client).status_code == 302
    deliver(app)
    public_id = the_encounter(app).public_id
    dana = login(app, DANA, "demo-password")
    response = dana.post(
        f"/office/encounters/{public_id}/resolve",
        data={"csrf_token": form_token(app, dana), "outcome": "left", "notes": ""},
    )
    assert response.status_code == 302
    assert the_encounter(app).status == "resolved"
    assert public_id not in dana.get("/office/").get_data(as_text=True)
    assert shown(dana) == [public_id]
    assert shown(dana, "?state=ended&outcome=left") == [public_id]
    assert shown(dana, "?state=open") == []
    page = dana.get("/review/").get_data(as_text=True)
    assert f'href="/review/encounters/{public_id}"' in page
    assert "They left" in page
    # The office menu leads here.
    assert 'href="/review/"' in dana.get("/office/").get_data(as_text=True)


FILTERED = {
    "school": ("school", None),
    "date_from": ("date_from", "2026-11-03"),
    "date_to": ("date_to", "2026-11-01"),
    "state": ("state", "ended"),
    "channel": ("channel", "phone"),
    "document": ("document", "judicial_warrant"),
    "exigency": ("exigency", "yes"),
    "no_exigency": ("exigency", "no"),
    "outcome": ("outcome", "entered_without_consent"),
    "no_outcome": ("outcome", "none"),
    "stood_down": ("stood_down", "yes"),
    "late": ("late", "yes"),
}


@pytest.mark.parametrize("case", list(FILTERED))
def test_each_filter_narrows_the_log_to_the_matching_encounters(
    app: Flask, district: dict[str, Any], case: str
) -> None:
    plain = add(app, started_at=BASE)
    rows = {
        "school": add(app, RIVERSIDE, started_at=BASE),
        "date_from": add(app, started_at=BASE + timedelta(days=1)),
        "date_to": add(app, started_at=BASE - timedelta(days=2)),
        "state": add(app, status="resolved", outcome="left"),
        "channel": add(app, channel="phone"),
        # A confirmed type wins over the first impression.
        "document": add(
            app,
            doc_first_impression="administrative_warrant",
            doc_confirmed_type="judicial_warrant",
        ),
        "exigency": add(app, exigency=True),
        "outcome": add(app, outcome="entered_without_consent", entered_without_consent=True),
        "stood_down": add(app, status="stood_down", stood_down_at=BASE),
        "late": add(app, first_acknowledged_at=BASE, acknowledged_late=True, status="acknowledged"),
        # Only the first impression is known: it counts until the office confirms one.
        "impression": add(app, doc_first_impression="administrative_warrant"),
    }
    name, value = FILTERED[case]
    if name == "school":
        value = school_public_id(app, RIVERSIDE)
    got = set(shown(reviewer(app), f"?{name}={value}"))
    everything = {plain, *rows.values()}
    if case == "no_exigency":
        expected = everything - {rows["exigency"]}
    elif case == "no_outcome":
        expected = everything - {rows["state"], rows["outcome"]}
    else:
        expected = {rows[case]}
    assert got == expected


def test_the_document_filter_reads_the_first_impression_until_one_is_confirmed(
    app: Flask, district: dict[str, Any]
) -> None:
    impression = add(app, doc_first_impression="administrative_warrant")
    add(app, doc_first_impression="administrative_warrant", doc_confirmed_type="judicial_warrant")
    assert shown(reviewer(app), "?document=administrative_warrant") == [impression]


def test_a_bad_filter_is_named_next_to_its_field_and_the_rest_kept(
    app: Flask, district: dict[str, Any]
) -> None:
    add(app)
    client = reviewer(app)
    response = client.get("/review/?channel=phone&date_from=yesterday&outcome=gone")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert ROW.findall(page) == []
    assert "No list is shown until the filters marked below are corrected." in page
    assert re.search(r'id="date_from-error">[^<]*valid date', page)
    assert 'id="outcome-error">Choose one of the options in the list.' in page
    assert re.search(r'<option selected value="phone">|<option value="phone" selected', page)
    assert 'value="yesterday"' in page
    response = client.get("/review/?date_from=2026-11-05&date_to=2026-11-01")
    assert 'id="date_to-error">This date is before the first date.' in response.get_data(
        as_text=True
    )
    response = client.get("/review/?after=not-a-cursor")
    assert "This page link is not valid." in response.get_data(as_text=True)


def test_pages_cover_every_row_once_even_when_an_encounter_arrives_in_between(
    app: Flask, district: dict[str, Any]
) -> None:
    # Ties on the start time are broken by id, so rows sharing a second are not lost.
    start = BASE.replace(microsecond=999_999)
    expected = [add(app, started_at=start - timedelta(minutes=i // 3)) for i in range(120)]
    client = reviewer(app)
    seen: list[str] = []
    path = "/review/?state=open"
    pages = 0
    while path:
        page = client.get(path).get_data(as_text=True)
        rows = ROW.findall(page)
        assert len(rows) == (50 if pages < 2 else 20)
        seen += rows
        pages += 1
        if pages == 1:
            add(app, started_at=BASE + timedelta(hours=1))
        found = NEXT.search(page)
        path = found.group(1).replace("&amp;", "&") if found else ""
        assert "OFFSET" not in path.upper()
        if found:
            assert "state=open" in path
    assert pages == 3
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))


def test_a_designee_sees_only_their_schools_and_learns_nothing_through_the_filters(
    app: Flask, district: dict[str, Any]
) -> None:
    lincoln = add(app, status="resolved", outcome="left")
    riverside = add(app, RIVERSIDE)
    jordan = login(app, JORDAN, "demo-password")
    page = jordan.get("/review/").get_data(as_text=True)
    assert ROW.findall(page) == [riverside]
    assert LINCOLN not in page and lincoln not in page
    # Another school's id is refused exactly as a made-up one is: no rows either way.
    other = jordan.get(f"/review/?school={school_public_id(app, LINCOLN)}")
    made_up = jordan.get("/review/?school=no-such-school")
    for response in (other, made_up):
        body = response.get_data(as_text=True)
        assert response.status_code == 200
        assert ROW.findall(body) == [] and LINCOLN not in body
        assert 'id="school-error">Choose one of the options in the list.' in body
    assert ROW.findall(jordan.get("/review/?outcome=left").get_data(as_text=True)) == []
    # Counsel and reviewers read every school.
    assert set(shown(reviewer(app))) == {lincoln, riverside}


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
    assert client.get("/review/").status_code == 403
    if role == "admin":
        assert 'href="/review/"' not in client.get("/admin/").get_data(as_text=True)


def test_a_visitor_not_signed_in_is_sent_to_sign_in(app: Flask, district: dict[str, Any]) -> None:
    response = app.test_client().get("/review/?state=ended")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize(
    "moment",
    [BASE, BASE.replace(microsecond=999_999), datetime(2031, 1, 1, 0, 0, 0, 1, tzinfo=UTC)],
)
def test_a_page_key_names_the_exact_start_time_of_the_last_row(moment: datetime) -> None:
    assert parse_cursor(make_cursor(moment, 42)) == (moment, 42)
    assert parse_cursor("99999999999999999999-1") is None
    assert parse_cursor("12-") is None


def test_the_agency_filter_matches_any_agent_of_the_encounter(
    app: Flask, district: dict[str, Any]
) -> None:
    two_agencies = add(app)
    other = add(app)
    add(app)  # no agent recorded
    with writing(), database(app).session_factory() as session, session.begin():
        for public_id, picks in ((two_agencies, ["hsi", "ice_ero"]), (other, ["fbi"])):
            encounter = session.scalar(select(Encounter).where(Encounter.public_id == public_id))
            assert encounter is not None
            for position, pick in enumerate(picks, start=1):
                session.add(Agent(encounter_id=encounter.id, position=position, agency_pick=pick))
    client = reviewer(app)
    assert shown(client, "?agency=ice_ero") == [two_agencies]
    assert shown(client, "?agency=fbi") == [other]
    assert shown(client, "?agency=dea") == []


def test_the_request_filter_matches_one_whole_kind_of_a_set(
    app: Flask, district: dict[str, Any]
) -> None:
    both = add(app, request_kinds="student_access,student_info")
    info = add(app, request_kinds="student_info")
    add(app, request_kinds="staff")
    client = reviewer(app)
    assert set(shown(client, "?request_kind=student_info")) == {both, info}
    assert shown(client, "?request_kind=student_access") == [both]
    page = client.get("/review/?request_kind=student%25").get_data(as_text=True)
    assert "Choose one of the options in the list." in page
