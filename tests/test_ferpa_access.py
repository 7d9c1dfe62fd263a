"""Every FERPA route, for every role, against a real request record: the answer each must get.

A route missing from EXPECTED fails the walk, so a new page is decided here before it ships.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, url_for
from sqlalchemy import select

from kiosk.models import RequestRecord, Student
from kiosk.webdb import database
from tests.test_ferpa import match_new, official, seed
from tests.test_policy import form_token
from tests.test_route_access import FORBIDDEN, OK, SIGN_IN, client_for

ROLES = (
    "anonymous",
    "front_desk",
    "designee",
    "other_designee",
    "counsel",
    "reviewer",
    "admin",
)


def answers(**overrides: str) -> dict[str, str]:
    base = dict.fromkeys(ROLES, FORBIDDEN)
    base.update(anonymous=SIGN_IN, counsel=OK, reviewer=OK)
    base.update(overrides)
    return base


OFFICIALS = answers()
EXPECTED: dict[tuple[str, str], dict[str, str]] = {
    ("ferpa.notices", "GET"): OFFICIALS,
    ("ferpa.match_page", "GET"): OFFICIALS,
    ("ferpa.match", "POST"): OFFICIALS,
    ("ferpa.record", "GET"): OFFICIALS,
    ("ferpa.update_record", "POST"): OFFICIALS,
    ("ferpa.notice_sent", "POST"): OFFICIALS,
    ("ferpa.nondisclosure", "POST"): answers(reviewer=FORBIDDEN),
    ("ferpa.find_student", "POST"): OFFICIALS,
    ("ferpa.student", "GET"): OFFICIALS,
    ("ferpa.student_csv", "GET"): OFFICIALS,
    ("ferpa.student_json", "GET"): OFFICIALS,
}
FORM_DATA: dict[str, dict[str, str]] = {
    "ferpa.match": {"p2-outcome": "not_student"},
    "ferpa.update_record": {
        "basis": "Subpoena",
        "released": "Nothing",
        "exception": "none",
        "notice_due_on": "2026-11-06",
    },
    "ferpa.notice_sent": {"sent_on": "2026-11-03", "method": "email"},
    "ferpa.nondisclosure": {"order": "set"},
    "ferpa.find_student": {"name": "Maria Alvarez"},
}


def ferpa_rules(app: Flask) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] != "ferpa":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, rule.rule))
    return sorted(found)


def test_every_ferpa_route_has_an_expected_answer(app: Flask) -> None:
    walked = {(endpoint, method) for endpoint, method, _ in ferpa_rules(app)}
    assert walked - EXPECTED.keys() == set(), "add the new route to EXPECTED"
    assert EXPECTED.keys() - walked == set(), "a route in EXPECTED no longer exists"


def answer_of(response: Any) -> str:
    if response.status_code == 200:
        return OK
    if response.status_code == 302:
        return SIGN_IN if "/login" in response.headers["Location"] else OK
    return str(response.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_expected_ferpa_answer_everywhere(
    app: Flask, district: dict[str, Any], role: str
) -> None:
    encounter = seed(app)
    setup = official(app, "reviewer")
    assert match_new(app, setup, encounter, 1, "Maria Alvarez").status_code == 302
    with database(app).session_factory() as session:
        record = session.scalars(select(RequestRecord)).one()
        student = session.scalars(select(Student)).one()
        values = {"public_id": "", "position": 2}
        record_id, student_id = record.public_id, student.public_id
    client = setup if role == "reviewer" else client_for(app, role)
    token = form_token(app, client)
    wrong = []
    for endpoint, method, rule in ferpa_rules(app):
        if rule.startswith("/ferpa/encounters/"):
            values["public_id"] = encounter
        elif rule.startswith("/ferpa/records/"):
            values["public_id"] = record_id
        else:
            values["public_id"] = student_id
        args = {k: v for k, v in values.items() if f"<{k}>" in rule or f":{k}>" in rule}
        with app.test_request_context():
            path = url_for(endpoint, **args)
        if method == "GET":
            response = client.get(path)
        else:
            prefix = "p2-" if endpoint == "ferpa.match" else ""
            data = {f"{prefix}csrf_token": token, **FORM_DATA.get(endpoint, {})}
            response = client.post(path, data=data)
        got = answer_of(response)
        if got != EXPECTED[(endpoint, method)][role]:
            wrong.append(
                f"{method} {path}: expected {EXPECTED[(endpoint, method)][role]}, got {got}"
            )
        if response.status_code == 200 and role not in ("counsel", "reviewer"):
            wrong.append(f"{method} {path} shows a student's record to {role}")
    assert wrong == []
    # Allowed actions went through; refused ones changed nothing.
    with database(app).session_factory() as session:
        after = session.scalars(select(RequestRecord)).one()
    assert after.nondisclosure is (role == "counsel")
    assert (after.notice_sent_on is not None) is (role in ("counsel", "reviewer"))
