"""Every administration route, for every role: admins only, unless EXCEPTIONS says otherwise.

A new admin route is walked as soon as it exists. A GET must render for an admin and be
refused to everyone else; a POST with no fields must be refused to everyone else and change
nothing (for an admin it comes back with its errors, or does what it does)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from kiosk.models import AuditEntry
from kiosk.webdb import database
from tests.test_policy import LINCOLN, create_user, form_token, login
from tests.test_route_access import FORBIDDEN, OK, SIGN_IN

ROLES = ("anonymous", "front_desk", "designee", "counsel", "reviewer", "admin")
ADMIN_ONLY = dict.fromkeys(ROLES, FORBIDDEN) | {"anonymous": SIGN_IN, "admin": OK}

# Routes whose answers differ from ADMIN_ONLY, by (endpoint, method).
# Script versions: everyone who reads records may read them (a record links to the version it
# showed); counsel approves, and counsel or an admin may take up the shipped pack as a draft.
SCRIPT_READERS = ADMIN_ONLY | {r: OK for r in ("designee", "counsel", "reviewer")}
EXCEPTIONS: dict[tuple[str, str], dict[str, str]] = {
    ("admin.scripts", "GET"): SCRIPT_READERS,
    ("admin.script", "GET"): SCRIPT_READERS,
    ("admin.script_preview", "GET"): SCRIPT_READERS,
    ("admin.script_approve", "POST"): ADMIN_ONLY | {"admin": FORBIDDEN, "counsel": OK},
    ("admin.scripts_shipped_draft", "POST"): ADMIN_ONLY | {"counsel": OK},
}

# A value for each URL variable an admin route may take; the walk fills them in.
SAMPLE_ARGS = {"public_id": "0" * 32, "token": "x" * 20, "id": "1", "number": "1"}


def admin_rules(app: Flask) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] != "admin":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, rule.rule))
    return sorted(found)


def client_for(app: Flask, role: str) -> FlaskClient:
    if role == "anonymous":
        return app.test_client()
    if role == "admin":
        return login(app, "admin@demo-district.example", "demo-password")
    create_user(
        app, f"{role}@district.test", role, LINCOLN if role in ("front_desk", "designee") else None
    )
    return login(app, f"{role}@district.test")


def path_of(rule: str) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[-1]
        return SAMPLE_ARGS.get(name, "1")

    return re.sub(r"<([^>]+)>", fill, rule)


def answer(status: int, location: str) -> str:
    if status == 302 and "/login" in location:
        return SIGN_IN
    if status in (200, 302, 400, 404, 409, 422):
        # An admin's request reached the page: it rendered, went on, or named what is wrong.
        return OK
    return str(status)


def audit_count(app: Flask) -> int:
    with database(app).session_factory() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_expected_answer_on_every_admin_route(
    app: Flask, district: Any, role: str
) -> None:
    rules = admin_rules(app)
    assert ("admin.home", "GET", "/admin/") in rules
    client = client_for(app, role)
    # Anonymous requests carry a valid token too, so what answers is the sign-in, not CSRF.
    csrf = form_token(app, client)
    before = audit_count(app)
    wrong = []
    for endpoint, method, rule in rules:
        path = path_of(rule)
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={"csrf_token": csrf})
        got = answer(response.status_code, response.headers.get("Location", ""))
        expected = EXCEPTIONS.get((endpoint, method), ADMIN_ONLY)[role]
        if got != expected:
            wrong.append(f"{method} {path} ({endpoint}): expected {expected}, got {got}")
    assert wrong == []
    if role != "admin":
        # Refused requests changed nothing, so recorded nothing.
        assert audit_count(app) == before
