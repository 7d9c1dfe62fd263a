"""API v1, FERPA request records: the records for the officials who keep them, scoped by the
token holder's schools; one student's file as its exports hold it, the parent's copy
without the requests under a non-disclosure order; never another student of the same
encounter; every use audited without a name; pages by key."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from kiosk.db import writing
from kiosk.ferpa import operations as ops
from kiosk.models import (
    AuditEntry,
    Encounter,
    NamedPerson,
    RequestRecord,
    RoleGrant,
    Student,
    User,
)
from kiosk.webdb import database
from tests.test_api import REVIEWER, cli, get, make_token
from tests.test_ferpa import MARIA, STARTED, TOMAS, seed
from tests.test_policy import LINCOLN, RIVERSIDE, create_user
from tests.test_review_log import school_id, school_public_id

OTHER = "[another person named]"


def match(
    app: Flask, encounter_public_id: str, position: int, name: str, school: str = LINCOLN
) -> str:
    """Match a named person to a student (an existing one of that name, else a new one) as
    an official would, through the FERPA operations; return the request record's id."""
    key = app.config["INDEX_KEY"]
    school_row_id = school_id(app, school)
    with writing(), database(app).session_factory() as session, session.begin():
        encounter = session.scalar(
            select(Encounter).where(Encounter.public_id == encounter_public_id)
        )
        assert encounter is not None
        encounter.school_id = school_row_id
        person = session.scalar(
            select(NamedPerson).where(
                NamedPerson.encounter_id == encounter.id, NamedPerson.position == position
            )
        )
        official = session.scalar(select(User).where(User.email == REVIEWER))
        assert person is not None and official is not None
        known = [s for s in session.scalars(select(Student)) if s.name == name]
        values = (
            ops.MatchInput("existing", student_public_id=known[0].public_id)
            if known
            else ops.MatchInput("new", new_name=name, new_school_id=encounter.school_id)
        )
        _, record, _ = ops.match_person(session, key, person.id, values, official.id, STARTED, 5)
        assert record is not None
        return record.public_id


def change(app: Flask, record_public_id: str, **columns: Any) -> None:
    with writing(), database(app).session_factory() as session, session.begin():
        record = session.scalar(
            select(RequestRecord).where(RequestRecord.public_id == record_public_id)
        )
        assert record is not None
        for name, value in columns.items():
            setattr(record, name, value)


def student_of(app: Flask, record_public_id: str) -> str:
    with database(app).session_factory() as session:
        record = session.scalar(
            select(RequestRecord).where(RequestRecord.public_id == record_public_id)
        )
        assert record is not None
        return record.student.public_id


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return [item["public_id"] for item in body.get("items", body.get("records", []))]


def uses(app: Flask) -> list[AuditEntry]:
    with database(app).session_factory() as session:
        found = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == "ferpa.read").order_by(AuditEntry.seq)
            )
        )
        for entry in found:
            session.expunge(entry)
        return found


@pytest.fixture
def token(app: Flask, district: dict[str, Any]) -> str:
    create_user(app, REVIEWER, "reviewer")
    return make_token(app)


def test_a_record_holds_the_request_and_never_the_other_student(app: Flask, token: str) -> None:
    public_id = seed(app)
    maria = match(app, public_id, 1, MARIA)
    tomas = match(app, public_id, 2, TOMAS)
    assert sorted(ids(get(app, "/ferpa/records", token))) == sorted([maria, tomas])
    response = get(app, f"/ferpa/records/{maria}", token)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Tomas" not in text and "Reyes" not in text
    body = response.get_json()
    assert body["student"]["name"] == MARIA
    assert body["school"]["name"] == LINCOLN
    assert body["encounter_public_id"] == public_id
    assert body["requested_at"] == "2026-11-02T15:00:00Z"
    assert body["requester"] == "Pat Officer, badge B-1207"
    assert body["agency"] == "Homeland Security Investigations"
    assert f"Records for {MARIA} and {OTHER}, and their addresses" in body["basis"]
    assert body["document_type"] == "judicial_subpoena"
    assert body["request_kinds"] == ["student_info"]
    assert body["released"] == "Nothing" and body["exception"] == "none"
    assert body["released_anything"] is False
    assert body["notice"]["due_on"] == "2026-11-07" and body["notice"]["sent_on"] is None
    assert body["nondisclosure"] is False and body["withdrawn_at"] is None
    # The list gives each record as the record itself does.
    listed = get(app, "/ferpa/records", token).get_json()["items"]
    assert next(item for item in listed if item["public_id"] == maria) == body
    assert get(app, "/ferpa/records/Maria-Alvarez", token).status_code == 404


def test_the_students_file_and_the_parents_copy_without_non_disclosed_requests(
    app: Flask, token: str
) -> None:
    first = seed(app)
    second = seed(app, started_at=STARTED + timedelta(days=3))
    older = match(app, first, 1, MARIA)
    newer = match(app, second, 1, MARIA)
    match(app, first, 2, TOMAS)
    change(app, newer, nondisclosure=True)
    student = student_of(app, older)
    response = get(app, f"/ferpa/students/{student}/records", token)
    assert ids(response) == [older, newer]
    body = response.get_json()
    assert body["student"]["name"] == MARIA and body["copy"] == "file"
    assert body["records"][1]["nondisclosure"] is True
    assert body["records"][1]["notice"]["state"] == "suppressed"
    parent = get(app, f"/ferpa/students/{student}/records?copy=parent", token)
    assert ids(parent) == [older]
    assert parent.get_json()["copy"] == "parent"
    for answer in (response, parent):
        text = answer.get_data(as_text=True)
        assert "Tomas" not in text and "Reyes" not in text and OTHER in text
    refused = get(app, f"/ferpa/students/{student}/records?copy=everyone", token)
    assert refused.status_code == 400
    assert set(refused.get_json()["fields"]) == {"copy"}
    # A record matched away from the student leaves the file, as in the file's exports.
    change(app, older, withdrawn_at=STARTED + timedelta(days=5))
    assert ids(get(app, f"/ferpa/students/{student}/records", token)) == [newer]
    assert older not in ids(get(app, "/ferpa/records", token))
    withdrawn = get(app, f"/ferpa/records/{older}", token).get_json()
    assert withdrawn["withdrawn_at"] == "2026-11-07T15:00:00Z"


def test_the_filters_narrow_the_records_and_a_bad_value_is_named(app: Flask, token: str) -> None:
    today = date.today()
    made = []
    for day in range(5):
        public_id = seed(app, started_at=STARTED - timedelta(days=day), names=(MARIA,))
        made.append(match(app, public_id, 1, MARIA))
    due, overdue, sent, suppressed, plain = made
    change(app, due, notice_due_on=today + timedelta(days=30))
    change(app, overdue, notice_due_on=today - timedelta(days=30))
    change(app, sent, notice_sent_on=today - timedelta(days=1), notice_method="letter")
    change(app, suppressed, nondisclosure=True)
    change(app, plain, notice_required=False, notice_due_on=None)
    change(app, sent, exception="consent", released="Attendance dates, to the agent")
    assert ids(get(app, "/ferpa/records", token)) == made
    assert ids(get(app, "/ferpa/records?notice=due", token)) == [due]
    assert ids(get(app, "/ferpa/records?notice=overdue", token)) == [overdue]
    assert ids(get(app, "/ferpa/records?notice=sent", token)) == [sent]
    assert ids(get(app, "/ferpa/records?notice=suppressed", token)) == [suppressed]
    assert ids(get(app, "/ferpa/records?notice=not_required", token)) == [plain]
    states = {
        item["public_id"]: item["notice"]["state"]
        for item in get(app, "/ferpa/records", token).get_json()["items"]
    }
    assert states == {
        due: "due",
        overdue: "overdue",
        sent: "sent",
        suppressed: "suppressed",
        plain: "not_required",
    }
    assert ids(get(app, "/ferpa/records?released=yes", token)) == [sent]
    assert ids(get(app, "/ferpa/records?exception=consent", token)) == [sent]
    assert ids(get(app, "/ferpa/records?released=no", token)) == [due, overdue, suppressed, plain]
    assert ids(get(app, "/ferpa/records?date_from=2026-11-01&date_to=2026-11-01", token)) == [
        overdue
    ]
    lincoln = school_public_id(app, LINCOLN)
    assert ids(get(app, f"/ferpa/records?school={lincoln}&notice=due", token)) == [due]
    response = get(app, "/ferpa/records?notice=late&exception=bribe&date_from=2026-11-03", token)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_filters"
    assert set(body["fields"]) == {"notice", "exception"}
    backwards = get(app, "/ferpa/records?date_from=2026-11-03&date_to=2026-11-01", token)
    assert set(backwards.get_json()["fields"]) == {"date_to"}


def test_a_token_reads_only_the_records_of_its_holders_schools(app: Flask, token: str) -> None:
    lincoln = match(app, seed(app, names=(MARIA,)), 1, MARIA)
    riverside = match(app, seed(app, names=(TOMAS,)), 1, TOMAS, school=RIVERSIDE)
    assert sorted(ids(get(app, "/ferpa/records", token))) == sorted([lincoln, riverside])
    with database(app).session_factory() as session, session.begin():
        holder = session.scalar(select(User).where(User.email == REVIEWER))
        assert holder is not None
        grant = session.scalars(select(RoleGrant).where(RoleGrant.user_id == holder.id)).one()
        grant.school_id = school_id(app, LINCOLN)
    assert ids(get(app, "/ferpa/records", token)) == [lincoln]
    assert get(app, f"/ferpa/records/{riverside}", token).status_code == 404
    assert get(app, f"/ferpa/records/{lincoln}", token).status_code == 200
    other_student = student_of(app, riverside)
    refused = get(app, f"/ferpa/students/{other_student}/records", token)
    assert refused.status_code == 404
    assert "Tomas" not in refused.get_data(as_text=True)
    assert get(app, f"/ferpa/students/{student_of(app, lincoln)}/records", token).status_code == 200
    query = f"?school={school_public_id(app, RIVERSIDE)}"
    assert get(app, f"/ferpa/records{query}", token).status_code == 400


def test_every_use_is_audited_with_ids_and_never_a_name(app: Flask, token: str) -> None:
    record = match(app, seed(app), 1, MARIA)
    student = student_of(app, record)
    assert get(app, "/ferpa/records", token).status_code == 200
    assert get(app, f"/ferpa/records/{record}", token).status_code == 200
    assert get(app, f"/ferpa/students/{student}/records?copy=parent", token).status_code == 200
    assert get(app, "/ferpa/students/Maria-Alvarez/records", token).status_code == 404
    entries = uses(app)
    assert [e.subject for e in entries] == [
        "ferpa_records",
        f"request_record:{record}",
        f"student:{student}",
        "student:(no such id)",
    ]
    details = [json.loads(e.details) for e in entries]
    assert [d["endpoint"] for d in details] == [
        "api.ferpa_records",
        "api.ferpa_record",
        "api.ferpa_student_records",
        "api.ferpa_student_records",
    ]
    assert details[2]["copy"] == "parent" and details[3]["copy"] == "file"
    everything = json.dumps([(e.subject, e.details) for e in entries])
    assert "Maria" not in everything and "Alvarez" not in everything and token not in everything
    # No token: refused before anything is read, and nothing is recorded.
    bare = app.test_client().get(f"/api/v1/ferpa/records/{record}")
    assert bare.status_code == 401 and bare.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(uses(app)) == 4


def test_a_holder_who_is_no_longer_an_official_is_refused(app: Flask, token: str) -> None:
    record = match(app, seed(app, names=(MARIA,)), 1, MARIA)
    assert get(app, f"/ferpa/records/{record}", token).status_code == 200
    assert cli(app, "users", "grant", REVIEWER, "designee", "--school", LINCOLN).exit_code == 0
    assert cli(app, "users", "revoke", REVIEWER, "reviewer").exit_code == 0
    refused = get(app, f"/ferpa/records/{record}", token)
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "insufficient_scope"
    assert "Maria" not in refused.get_data(as_text=True)


def test_pages_follow_by_key_and_a_record_arriving_meanwhile_shifts_nothing(
    app: Flask, token: str
) -> None:
    from kiosk.ferpa.reads import PAGE_SIZE

    made = []
    for minute in range(PAGE_SIZE + 3):
        public_id = seed(app, started_at=STARTED - timedelta(minutes=minute), names=(MARIA,))
        made.append(match(app, public_id, 1, MARIA))
    first = get(app, "/ferpa/records?released=no", token).get_json()
    assert [item["public_id"] for item in first["items"]] == made[:PAGE_SIZE]
    assert first["next_cursor"] and "released=no" in first["next_url"]
    newest = seed(app, started_at=datetime(2026, 11, 3, tzinfo=STARTED.tzinfo), names=(MARIA,))
    match(app, newest, 1, MARIA)
    second = get(app, first["next_url"].removeprefix("/api/v1"), token).get_json()
    assert [item["public_id"] for item in second["items"]] == made[PAGE_SIZE:]
    assert second["next_cursor"] is None and second["next_url"] is None
