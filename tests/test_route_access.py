"""Every office and review route, for every role, against a real encounter: the answer each
one must get.

A route missing from EXPECTED fails the walk, so a new page is decided here before it ships.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.models import OutboxMessage, Photo
from kiosk.notify.links import ack_token
from kiosk.webdb import database
from tests.conftest import deliver, tap_start, the_encounter
from tests.test_photos import jpeg_with_gps, upload
from tests.test_policy import LINCOLN, create_user, form_token, login

OK, FORBIDDEN, HIDDEN, SIGN_IN, NO_TOKEN = "ok", "403", "404", "sign-in", "401"
ROLES = ("anonymous", "front_desk", "designee", "other_designee", "counsel", "reviewer", "admin")


def answers(**overrides: str) -> dict[str, str]:
    base = dict.fromkeys(ROLES, OK)
    base.update(anonymous=SIGN_IN, front_desk=FORBIDDEN)
    base.update(overrides)
    return base


READ = answers(other_designee=HIDDEN, admin=FORBIDDEN)
ACT = answers(other_designee=HIDDEN, reviewer=FORBIDDEN, admin=FORBIDDEN)
PUBLIC = dict.fromkeys(ROLES, OK)
HOLD = answers(designee=FORBIDDEN, other_designee=FORBIDDEN, reviewer=FORBIDDEN, admin=FORBIDDEN)

EXPECTED: dict[tuple[str, str], dict[str, str]] = {
    ("office.home", "GET"): answers(),
    ("office.open_list", "GET"): answers(admin=FORBIDDEN),
    ("office.encounter", "GET"): READ,
    ("office.record_fragment", "GET"): READ,
    ("office.photos_fragment", "GET"): READ,
    ("office.events_json", "GET"): READ,
    ("office.photo", "GET"): READ,
    ("office.acknowledge", "POST"): ACT,
    ("office.message_desk", "POST"): ACT,
    ("office.confirm_document", "POST"): ACT,
    ("office.mark", "POST"): ACT,
    ("office.consent_check", "POST"): ACT,
    ("office.guardian_notice", "POST"): ACT,
    ("office.care", "POST"): ACT,
    ("office.close_stood_down", "POST"): ACT,
    ("office.reopen", "POST"): ACT,
    ("office.resolve", "POST"): ACT,
    ("office.outbox", "GET"): answers(counsel=FORBIDDEN, reviewer=FORBIDDEN),
    ("office.outbox_retry", "POST"): answers(
        other_designee=HIDDEN, counsel=FORBIDDEN, reviewer=FORBIDDEN
    ),
    # The link itself is the credential: it works signed in or not.
    ("office.acknowledge_link", "GET"): PUBLIC,
    ("office.acknowledge_link", "POST"): PUBLIC,
    # Demo mode only (404 otherwise): the local mail log.
    ("office.mail_log", "GET"): PUBLIC,
    # The review log lists only the user's own schools: another school's designee gets a
    # page without this encounter (checked below), not a refusal.
    ("review.log", "GET"): answers(admin=FORBIDDEN),
    ("review.report", "GET"): READ,
    ("review.encounter", "GET"): READ,
    # A search lists only the user's own schools, like the log.
    ("review.search", "POST"): answers(admin=FORBIDDEN),
    # Privileged notes: counsel alone; refused to every other role whatever the record, so
    # the refusal tells nothing about whether it exists.
    ("review.add_note", "POST"): answers(
        other_designee=FORBIDDEN, designee=FORBIDDEN, reviewer=FORBIDDEN, admin=FORBIDDEN
    ),
    # Its files: the same rows, so the same answers.
    ("review.export_csv", "GET"): answers(admin=FORBIDDEN),
    ("review.export_json", "GET"): answers(admin=FORBIDDEN),
    # Counts for the user's own schools only (another school's designee sees none of this
    # school's name, checked below); admins read no record, counted or not.
    ("review.statistics", "GET"): answers(admin=FORBIDDEN),
    ("review.board", "GET"): answers(admin=FORBIDDEN),
    # The API reads no session cookie: without a bearer token everyone is refused alike
    # (tests/test_api.py checks the tokens). Its description is public.
    ("api.encounters", "GET"): dict.fromkeys(ROLES, NO_TOKEN),
    ("api.encounter", "GET"): dict.fromkeys(ROLES, NO_TOKEN),
    ("api.encounter_events", "GET"): dict.fromkeys(ROLES, NO_TOKEN),
    ("api.ferpa_records", "GET"): dict.fromkeys(ROLES, NO_TOKEN),
    ("api.ferpa_record", "GET"): dict.fromkeys(ROLES, NO_TOKEN),
    ("api.ferpa_student_records", "GET"): dict.fromkeys(ROLES, NO_TOKEN),
    ("api.openapi", "GET"): PUBLIC,
    # The legal hold: counsel's alone, so every other role is refused before any lookup.
    ("review.hold", "GET"): HOLD,
    ("review.hold_set", "POST"): HOLD,
    ("review.hold_release", "POST"): HOLD,
}
# The blueprints whose every route must be decided here.
WALKED = ("office", "review", "api")

# Form fields that make each action valid, so "allowed" means it went through.
FORM_DATA: dict[str, dict[str, str]] = {
    "office.message_desk": {"preset": "on_my_way"},
    "office.confirm_document": {"doc_type": "judicial_warrant"},
    "office.consent_check": {"result": "confirmed"},
    "office.guardian_notice": {"notice": "not_notified", "reason": "Not reached yet"},
    "office.care": {"care": "Stays with the teacher"},
    "office.resolve": {"outcome": "left", "notes": ""},
    "review.search": {"words": "welfare"},
    "review.add_note": {"text": "Ask the agency for a copy of the warrant."},
    "review.hold_set": {"reason": "Notice of claim"},
}
# The alert's link first (before the dashboard acknowledges for the same contact), and the
# end of the record last, keep every action meaningful.
FIRST = ("office.acknowledge_link",)
LAST = ("office.close_stood_down", "office.reopen", "office.resolve")


def order(rule: tuple[str, str, str]) -> tuple[int, int]:
    endpoint = rule[0]
    if endpoint in FIRST:
        return (0, 0)
    return (2, LAST.index(endpoint)) if endpoint in LAST else (1, 0)


def office_rules(app: Flask) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in WALKED:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, rule.rule))
    return sorted(found, key=order)


def test_every_office_route_has_an_expected_answer(app: Flask) -> None:
    walked = {(endpoint, method) for endpoint, method, _ in office_rules(app)}
    assert walked - EXPECTED.keys() == set(), "add the new route to EXPECTED"
    assert EXPECTED.keys() - walked == set(), "a route in EXPECTED no longer exists"


def client_for(app: Flask, role: str) -> FlaskClient:
    if role == "anonymous":
        return app.test_client()
    if role == "designee":
        return login(app, "dana.reyes@demo-district.example", "demo-password")
    if role == "other_designee":
        return login(app, "jordan.kim@demo-district.example", "demo-password")
    if role == "admin":
        return login(app, "admin@demo-district.example", "demo-password")
    create_user(app, f"{role}@district.test", role, LINCOLN if role == "front_desk" else None)
    return login(app, f"{role}@district.test")


def answer_of(response: Any, public_id: str) -> str:
    if response.status_code == 200:
        return OK
    if response.status_code == 302:
        location = response.headers["Location"]
        if "/login" in location:
            return SIGN_IN
        # Allowed: back to this encounter, or to an office page that is not another record.
        if f"/office/encounters/{public_id}" in location or "/office/encounters/" not in location:
            return OK
        return f"302 to {location}"
    return str(response.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_expected_answer_everywhere(
    app: Flask, kiosk_client: FlaskClient, role: str
) -> None:
    assert tap_start(kiosk_client).status_code == 302
    assert upload(kiosk_client, jpeg_with_gps()).status_code == 302
    deliver(app)
    encounter = the_encounter(app)
    with database(app).session_factory() as session:
        photo = session.scalars(select(Photo)).one()
        message = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).first()
        assert message is not None and message.contact_id is not None
        contact_id, message_id = message.contact_id, message.id
    token = ack_token(app.config["SECRET_KEY"], encounter.public_id, contact_id)
    values = {
        "public_id": encounter.public_id,
        "message_id": message_id,
        "what": "on_scene",
        "token": token,
    }
    client = client_for(app, role)
    csrf = form_token(app, client)
    wrong = []
    for endpoint, method, rule in office_rules(app):
        args = {k: v for k, v in values.items() if f"<{k}>" in rule or f":{k}>" in rule}
        if endpoint == "office.photo":
            args["public_id"] = photo.public_id
        with app.test_request_context():
            path = url_for(endpoint, **args)
        if method == "GET":
            response = client.get(path)
        else:
            data = {"csrf_token": csrf, **FORM_DATA.get(endpoint, {})}
            response = client.post(path, data=data)
        # Read the whole body: a streamed file ends its request before the next one begins.
        response.get_data()
        response.close()
        got = answer_of(response, encounter.public_id)
        expected = EXPECTED[(endpoint, method)][role]
        if got != expected:
            wrong.append(f"{method} {path} ({endpoint}): expected {expected}, got {got}")
        if (
            role == "other_designee"
            and response.status_code == 200
            and endpoint
            not in (
                "office.acknowledge_link",
                "office.mail_log",
            )
        ):
            body = response.get_data(as_text=True)
            if encounter.public_id in body or LINCOLN in body:
                wrong.append(f"{method} {path} shows another school's encounter")
    assert wrong == []
    # Allowed actions went through; refused ones changed nothing.
    ended = the_encounter(app).status == "resolved"
    assert ended is (role in ("designee", "counsel"))
