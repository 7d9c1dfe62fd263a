"""FERPA records: matching named people to students, the 99.32 request record, the student's
file and its copies, the parent notice and counsel's non-disclosure flag."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.db import writing
from kiosk.models import (
    Agent,
    AuditEntry,
    Encounter,
    NamedPerson,
    PersonMatch,
    RequestRecord,
    School,
    Student,
)
from kiosk.sealing import blind_index
from kiosk.webdb import database
from tests.test_policy import LINCOLN, create_user, form_token, login

MARIA = "Maria Alvarez"
TOMAS = "Tomas Reyes"
PURPOSE = f"Records for {MARIA} and {TOMAS}, and their addresses"
STARTED = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def seed(
    app: Flask, started_at: datetime = STARTED, names: tuple[str, ...] = (MARIA, TOMAS)
) -> str:
    """An encounter at Lincoln, as the desk and office leave it: one agent, a subpoena, a
    purpose that names both students, and the two named. Returns its public id."""
    key = app.config["INDEX_KEY"]
    with writing(), database(app).session_factory() as session, session.begin():
        school = session.scalar(select(School).where(School.name == LINCOLN))
        assert school is not None
        encounter = Encounter(
            school_id=school.id,
            started_at=started_at,
            channel="in_person",
            request_kinds="student_info",
            purpose=PURPOSE,
            doc_first_impression="judicial_subpoena",
            doc_confirmed_type="judicial_subpoena",
        )
        session.add(encounter)
        session.flush()
        session.add(
            Agent(
                encounter_id=encounter.id,
                position=1,
                name="Pat Officer",
                badge_number="B-1207",
                agency_printed="Homeland Security Investigations",
            )
        )
        for position, name in enumerate(names, start=1):
            session.add(
                NamedPerson(
                    encounter_id=encounter.id,
                    position=position,
                    name=name,
                    name_index=blind_index(key, name),
                    relation="student",
                )
            )
        return encounter.public_id


def official(app: Flask, role: str = "reviewer") -> FlaskClient:
    create_user(app, f"{role}@district.test", role)
    return login(app, f"{role}@district.test")


def lincoln_public_id(app: Flask) -> str:
    with database(app).session_factory() as session:
        found = session.scalar(select(School.public_id).where(School.name == LINCOLN))
        assert found is not None
        return found


def match_new(
    app: Flask, client: FlaskClient, public_id: str, position: int, name: str, local_id: str = ""
) -> Any:
    prefix = f"p{position}-"
    return client.post(
        f"/ferpa/encounters/{public_id}/people/{position}",
        data={
            f"{prefix}csrf_token": form_token(app, client),
            f"{prefix}outcome": "new",
            f"{prefix}new_name": name,
            f"{prefix}new_school": lincoln_public_id(app),
            f"{prefix}new_local_id": local_id,
        },
    )


def match_as(app: Flask, client: FlaskClient, public_id: str, position: int, outcome: str) -> Any:
    prefix = f"p{position}-"
    return client.post(
        f"/ferpa/encounters/{public_id}/people/{position}",
        data={f"{prefix}csrf_token": form_token(app, client), f"{prefix}outcome": outcome},
    )


def records(app: Flask) -> list[RequestRecord]:
    with database(app).session_factory() as session:
        found = list(session.scalars(select(RequestRecord).order_by(RequestRecord.id)))
        for record in found:
            session.expunge(record)
        return found


def student_named(app: Flask, name: str) -> Student:
    key = app.config["INDEX_KEY"]
    with database(app).session_factory() as session:
        student = session.scalar(
            select(Student).where(Student.name_index == blind_index(key, name))
        )
        assert student is not None
        session.expunge(student)
        return student


def audit_entries(app: Flask, *actions: str) -> list[AuditEntry]:
    with database(app).session_factory() as session:
        found = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action.in_(actions)).order_by(AuditEntry.seq)
            )
        )
        for entry in found:
            session.expunge(entry)
        return found


def test_matching_a_person_to_a_new_student_makes_the_request_record(
    app: Flask, district: dict[str, Any]
) -> None:
    public_id = seed(app)
    reviewer = official(app)
    page = reviewer.get(f"/ferpa/encounters/{public_id}")
    assert page.status_code == 200
    assert MARIA in page.get_data(as_text=True)
    response = match_new(app, reviewer, public_id, 1, MARIA, "S-1001")
    assert response.status_code == 302, response.get_data(as_text=True)
    [record] = records(app)
    student = student_named(app, MARIA)
    assert record.student_id == student.id and student.local_id == "S-1001"
    assert record.encounter_public_id == public_id
    assert record.requester == "Pat Officer, badge B-1207"
    assert record.agency == "Homeland Security Investigations"
    assert "Stated purpose: Records for Maria Alvarez and [another person named]," in record.basis
    assert "Tomas" not in record.basis and "Court subpoena or court order" in record.basis
    assert record.released == "Nothing" and record.exception == "none"
    # A subpoena: the parent notice is due five days after the request (the default).
    assert record.notice_required is True
    assert record.notice_due_on == date(2026, 11, 7)
    # The page now says what the person is.
    after = reviewer.get(f"/ferpa/encounters/{public_id}").get_data(as_text=True)
    assert re.search(r'id="person-1-now">Matched to a student: Maria Alvarez<', after)
    # Audited with ids and categories only.
    [entry] = audit_entries(app, "ferpa.match")
    assert entry.subject == f"encounter:{public_id}"
    details = json.loads(entry.details)
    assert details["outcome"] == "student" and details["student"] == student.public_id
    assert "Alvarez" not in entry.details and "Maria" not in entry.details


def test_the_request_record_stands_on_its_own_copies(app: Flask, district: dict[str, Any]) -> None:
    public_id = seed(app)
    reviewer = official(app)
    assert match_new(app, reviewer, public_id, 1, MARIA).status_code == 302
    # Retention may later redact the encounter: the record keeps what it copied.
    with writing(), database(app).session_factory() as session, session.begin():
        encounter = session.scalar(select(Encounter).where(Encounter.public_id == public_id))
        assert encounter is not None
        encounter.purpose = None
        for agent in session.scalars(select(Agent).where(Agent.encounter_id == encounter.id)):
            agent.name = None
            agent.agency_printed = None
    student = student_named(app, MARIA)
    page = reviewer.get(f"/ferpa/students/{student.public_id}").get_data(as_text=True)
    assert "Pat Officer" in page and "Homeland Security Investigations" in page
    assert "their addresses" in page


def test_a_changed_match_keeps_its_history_and_leaves_the_student_file(
    app: Flask, district: dict[str, Any]
) -> None:
    public_id = seed(app)
    reviewer = official(app)
    assert match_new(app, reviewer, public_id, 1, MARIA).status_code == 302
    student = student_named(app, MARIA)
    assert match_as(app, reviewer, public_id, 1, "not_enrolled").status_code == 302
    # The same decision twice adds nothing.
    assert match_as(app, reviewer, public_id, 1, "not_enrolled").status_code == 302
    with database(app).session_factory() as session:
        history = list(session.scalars(select(PersonMatch).order_by(PersonMatch.id)))
    assert [m.outcome for m in history] == ["student", "not_enrolled"]
    assert history[0].superseded_at is not None and history[1].superseded_at is None
    [record] = records(app)
    assert record.withdrawn_at is not None
    page = reviewer.get(f"/ferpa/students/{student.public_id}").get_data(as_text=True)
    assert 'id="no-requests"' in page
    # Both decisions are in the audit log.
    assert [json.loads(e.details)["outcome"] for e in audit_entries(app, "ferpa.match")] == [
        "student",
        "not_enrolled",
    ]
    matching = reviewer.get(f"/ferpa/encounters/{public_id}").get_data(as_text=True)
    assert "Earlier decisions" in matching
    # A name the desk withdrew after it was matched stays open to a changed decision.
    with writing(), database(app).session_factory() as session, session.begin():
        person = session.scalars(select(NamedPerson).where(NamedPerson.position == 1)).one()
        person.withdrawn_at = STARTED
    matching = reviewer.get(f"/ferpa/encounters/{public_id}").get_data(as_text=True)
    assert "The desk withdrew this name" in matching
    assert match_as(app, reviewer, public_id, 1, "unknown").status_code == 302


def test_a_student_file_never_names_the_other_student_of_the_encounter(
    app: Flask, district: dict[str, Any]
) -> None:
    public_id = seed(app)
    reviewer = official(app)
    assert match_new(app, reviewer, public_id, 1, MARIA, "S-1").status_code == 302
    assert match_new(app, reviewer, public_id, 2, TOMAS, "S-2").status_code == 302
    maria, tomas = student_named(app, MARIA), student_named(app, TOMAS)
    for copy in ("", "?copy=parent"):
        page = reviewer.get(f"/ferpa/students/{maria.public_id}{copy}")
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        assert MARIA in body and "Tomas" not in body and "Reyes" not in body
        assert "[another person named]" in body
        for kind in ("csv", "json"):
            response = reviewer.get(f"/ferpa/students/{maria.public_id}.{kind}{copy}")
            assert response.status_code == 200
            text = response.get_data(as_text=True)
            assert "Tomas" not in text and "Reyes" not in text
            assert "Pat Officer" in text
    rows = list(
        csv.DictReader(
            io.StringIO(
                reviewer.get(f"/ferpa/students/{tomas.public_id}.csv").get_data(as_text=True)
            )
        )
    )
    assert len(rows) == 1 and rows[0]["student"] == TOMAS and rows[0]["local_student_id"] == "S-2"
    assert "Maria" not in rows[0]["basis"] and "Alvarez" not in rows[0]["basis"]
    document = json.loads(
        reviewer.get(f"/ferpa/students/{tomas.public_id}.json").get_data(as_text=True)
    )
    assert [r["record_id"] for r in document["records"]] == [rows[0]["record_id"]]
    # Every view and file of a student's record is audited: who, when, which student.
    views = audit_entries(app, "ferpa.student_view", "ferpa.student_export")
    assert {e.action for e in views} == {"ferpa.student_view", "ferpa.student_export"}
    assert all(e.actor.startswith("user:") and e.at is not None for e in views)
    assert {json.loads(e.details)["student"] for e in views} == {maria.public_id, tomas.public_id}
    assert all("Maria" not in e.details and "Tomas" not in e.details for e in views)


def test_an_enrolled_student_is_suggested_by_the_blind_index(
    app: Flask, district: dict[str, Any]
) -> None:
    first = seed(app)
    reviewer = official(app)
    assert match_new(app, reviewer, first, 1, MARIA).status_code == 302
    maria = student_named(app, MARIA)
    # Another visit names her again, spelled with other spacing and case.
    second = seed(app, STARTED + timedelta(days=3), names=("maria  ALVAREZ",))
    page = reviewer.get(f"/ferpa/encounters/{second}").get_data(as_text=True)
    assert re.search(rf'<option selected value="{maria.public_id}">', page)
    response = reviewer.post(
        f"/ferpa/encounters/{second}/people/1",
        data={
            "p1-csrf_token": form_token(app, reviewer),
            "p1-outcome": "existing",
            "p1-student": maria.public_id,
        },
    )
    assert response.status_code == 302
    file = reviewer.get(f"/ferpa/students/{maria.public_id}").get_data(as_text=True)
    assert file.count("Request of 2026-11-") == 2


def test_a_form_with_a_problem_comes_back_as_typed(app: Flask, district: dict[str, Any]) -> None:
    public_id = seed(app)
    reviewer = official(app)
    response = match_new(app, reviewer, public_id, 1, "", "S-77")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'id="p1-new_name-error">Enter the student&#39;s name as enrolled\.<', page)
    assert 'value="S-77"' in page
    assert records(app) == []
    assert match_new(app, reviewer, public_id, 1, MARIA).status_code == 302
    [record] = records(app)
    response = reviewer.post(
        f"/ferpa/records/{record.public_id}",
        data={
            "csrf_token": form_token(app, reviewer),
            "basis": "Subpoena for attendance records",
            "released": "",
            "exception": "subpoena_notice",
        },
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Subpoena for attendance records" in page
    assert re.search(r'id="released-error">Say what was released', page)
    assert re.search(r'<option selected value="subpoena_notice">', page)
    assert records(app)[0].exception == "none"


def test_the_official_corrects_the_record(app: Flask, district: dict[str, Any]) -> None:
    public_id = seed(app)
    reviewer = official(app)
    assert match_new(app, reviewer, public_id, 1, MARIA).status_code == 302
    [record] = records(app)
    response = reviewer.post(
        f"/ferpa/records/{record.public_id}",
        data={
            "csrf_token": form_token(app, reviewer),
            "basis": "Subpoena AO 88B, case 1:26-cv-0042",
            "released": "Attendance dates for October",
            "exception": "subpoena_notice",
            "notice_due_on": "2026-11-04",
        },
    )
    assert response.status_code == 302
    [after] = records(app)
    assert after.released == "Attendance dates for October"
    assert after.exception == "subpoena_notice"
    assert after.notice_due_on == date(2026, 11, 4)
    [entry] = audit_entries(app, "ferpa.record_update")
    assert json.loads(entry.details)["fields"] == [
        "basis",
        "released",
        "exception",
        "notice_due_on",
    ]
    assert "October" not in entry.details
    # A subpoena's notice cannot be dropped by clearing its date: only counsel's flag stops it.
    cleared = reviewer.post(
        f"/ferpa/records/{record.public_id}",
        data={
            "csrf_token": form_token(app, reviewer),
            "basis": "Subpoena AO 88B",
            "released": "Nothing",
            "exception": "none",
            "notice_due_on": "",
        },
    )
    assert cleared.status_code == 422
    assert re.search(
        r'id="notice_due_on-error">A subpoena or court order needs a date for the parent notice\.<',
        cleared.get_data(as_text=True),
    )
    assert records(app)[0].notice_required is True
    # Released under no exception, or "nothing" under one: each is named beside its field.
    for released, exception, field in [
        ("Attendance dates", "none", "exception"),
        ("Nothing", "emergency", "released"),
    ]:
        refused = reviewer.post(
            f"/ferpa/records/{record.public_id}",
            data={
                "csrf_token": form_token(app, reviewer),
                "basis": "Subpoena AO 88B",
                "released": released,
                "exception": exception,
                "notice_due_on": "2026-11-04",
            },
        )
        assert refused.status_code == 422
        page = refused.get_data(as_text=True)
        assert re.search(rf'id="{field}-error">', page) and released in page
    assert records(app)[0].exception == "subpoena_notice"


def test_a_form_without_its_token_changes_nothing(app: Flask, district: dict[str, Any]) -> None:
    public_id = seed(app)
    reviewer = official(app)
    response = reviewer.post(
        f"/ferpa/encounters/{public_id}/people/1",
        data={"p1-outcome": "not_student"},
    )
    assert response.status_code == 400
    assert "This page had expired" in response.get_data(as_text=True)
    with database(app).session_factory() as session:
        assert session.scalars(select(PersonMatch)).all() == []


def test_only_counsel_sets_the_nondisclosure_flag_and_it_is_audited(
    app: Flask, district: dict[str, Any]
) -> None:
    public_id = seed(app)
    reviewer = official(app)
    counsel = official(app, "counsel")
    assert match_new(app, reviewer, public_id, 1, MARIA).status_code == 302
    [record] = records(app)
    path = f"/ferpa/records/{record.public_id}/nondisclosure"
    refused = reviewer.post(path, data={"csrf_token": form_token(app, reviewer), "order": "set"})
    assert refused.status_code == 403
    assert records(app)[0].nondisclosure is False
    assert 'id="order-form"' not in reviewer.get(f"/ferpa/records/{record.public_id}").get_data(
        as_text=True
    )
    assert record.public_id in reviewer.get("/ferpa/").get_data(as_text=True)
    done = counsel.post(path, data={"csrf_token": form_token(app, counsel), "order": "set"})
    assert done.status_code == 302
    assert records(app)[0].nondisclosure is True
    # The notice is suppressed: off the list, and the parent's copy leaves the request out.
    assert record.public_id not in reviewer.get("/ferpa/").get_data(as_text=True)
    maria = student_named(app, MARIA)
    parent = reviewer.get(f"/ferpa/students/{maria.public_id}?copy=parent").get_data(as_text=True)
    assert 'id="no-requests"' in parent
    own = reviewer.get(f"/ferpa/students/{maria.public_id}").get_data(as_text=True)
    assert "a non-disclosure order applies" in own
    cleared = counsel.post(path, data={"csrf_token": form_token(app, counsel), "order": "clear"})
    assert cleared.status_code == 302
    assert records(app)[0].nondisclosure is False
    entries = audit_entries(app, "ferpa.nondisclosure_set", "ferpa.nondisclosure_cleared")
    assert [e.action for e in entries] == ["ferpa.nondisclosure_set", "ferpa.nondisclosure_cleared"]
    assert all(json.loads(e.details) == {"request_record": record.public_id} for e in entries)


def test_notices_due_and_overdue_are_listed_until_sent(
    app: Flask, district: dict[str, Any]
) -> None:
    public_id = seed(app, datetime(2026, 11, 2, 15, 0, tzinfo=UTC))
    reviewer = official(app)
    assert match_new(app, reviewer, public_id, 1, MARIA).status_code == 302
    [record] = records(app)
    listing = reviewer.get("/ferpa/").get_data(as_text=True)
    assert record.public_id in listing
    assert "Overdue since 2026-11-07" in listing
    sent = f"/ferpa/records/{record.public_id}/notice"
    future = reviewer.post(
        sent,
        data={"csrf_token": form_token(app, reviewer), "sent_on": "2999-01-01", "method": "letter"},
    )
    assert future.status_code == 422
    assert re.search(
        r'id="sent_on-error">This date is in the future\.<', future.get_data(as_text=True)
    )
    done = reviewer.post(
        sent,
        data={"csrf_token": form_token(app, reviewer), "sent_on": "2026-11-04", "method": "letter"},
    )
    assert done.status_code == 302
    assert record.public_id not in reviewer.get("/ferpa/").get_data(as_text=True)
    page = reviewer.get(f"/ferpa/records/{record.public_id}").get_data(as_text=True)
    assert "Sent on 2026-11-04 (Letter)" in page


def test_two_officials_matching_at_once_leave_one_current_decision(
    app: Flask, district: dict[str, Any]
) -> None:
    public_id = seed(app)
    first = official(app)
    second = official(app, "counsel")
    barrier = threading.Barrier(2)
    answers: list[int] = []
    tokens = [form_token(app, first), form_token(app, second)]
    school = lincoln_public_id(app)

    def run(client: FlaskClient, token: str, name: str) -> None:
        data = {
            "p1-csrf_token": token,
            "p1-outcome": "new",
            "p1-new_name": name,
            "p1-new_school": school,
        }
        barrier.wait()
        answers.append(
            client.post(f"/ferpa/encounters/{public_id}/people/1", data=data).status_code
        )

    threads = [
        threading.Thread(target=run, args=(first, tokens[0], MARIA)),
        threading.Thread(target=run, args=(second, tokens[1], "Maria Alvarez-Ruiz")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [302, 302]
    with database(app).session_factory() as session:
        matches = list(session.scalars(select(PersonMatch)))
        current = [m for m in matches if m.superseded_at is None]
        live = list(
            session.scalars(select(RequestRecord).where(RequestRecord.withdrawn_at.is_(None)))
        )
    assert len(matches) == 2 and len(current) == 1
    assert len(live) == 1 and live[0].match_id == current[0].id


def test_a_student_file_is_found_by_name_without_the_name_in_an_address(
    app: Flask, district: dict[str, Any]
) -> None:
    public_id = seed(app)
    reviewer = official(app)
    assert match_new(app, reviewer, public_id, 1, MARIA, "S-9").status_code == 302
    maria = student_named(app, MARIA)
    token = form_token(app, reviewer)
    found = reviewer.post(
        "/ferpa/students/find", data={"csrf_token": token, "name": " maria alvarez "}
    )
    assert found.status_code == 200
    assert f'href="/ferpa/students/{maria.public_id}"' in found.get_data(as_text=True)
    none = reviewer.post("/ferpa/students/find", data={"csrf_token": token, "name": TOMAS})
    assert 'id="found-none"' in none.get_data(as_text=True)
    empty = reviewer.post("/ferpa/students/find", data={"csrf_token": token, "name": ""})
    assert empty.status_code == 422
    assert re.search(
        r'id="name-error">Enter the student&#39;s name\.<', empty.get_data(as_text=True)
    )
    searches = audit_entries(app, "ferpa.student_search")
    assert [json.loads(e.details) for e in searches] == [{"found": 1}, {"found": 0}]


def test_a_cell_a_spreadsheet_would_run_arrives_as_text(
    app: Flask, district: dict[str, Any]
) -> None:
    public_id = seed(app)
    reviewer = official(app)
    assert match_new(app, reviewer, public_id, 1, MARIA).status_code == 302
    [record] = records(app)
    formula = '=HYPERLINK("http://x")'
    response = reviewer.post(
        f"/ferpa/records/{record.public_id}",
        data={
            "csrf_token": form_token(app, reviewer),
            "basis": formula,
            "released": "Nothing",
            "exception": "none",
            "notice_due_on": "2026-11-07",
        },
    )
    assert response.status_code == 302
    maria = student_named(app, MARIA)
    body = reviewer.get(f"/ferpa/students/{maria.public_id}.csv").get_data(as_text=True)
    [row] = list(csv.DictReader(io.StringIO(body)))
    assert row["basis"] == "'" + formula
    document = json.loads(
        reviewer.get(f"/ferpa/students/{maria.public_id}.json").get_data(as_text=True)
    )
    assert document["records"][0]["basis"] == "'" + formula
