"""Who may do what: the policy's table, and the office as each role sees it."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from kiosk.auth.policy import ACTIONS, ANY_SCHOOL, may
from kiosk.clock import now_utc
from kiosk.models import RoleGrant, User
from kiosk.webdb import database
from tests.conftest import CSRF_PATTERN, csrf_token, deliver, tap_start, the_encounter

PASSWORD = "test-password-123"
LINCOLN = "Lincoln Elementary School"
RIVERSIDE = "Riverside Middle School"


def create_user(app: Flask, email: str, role: str, school: str | None = None) -> None:
    args = ["users", "create", "--email", email, "--name", f"Test {role}", "--role", role]
    if school:
        args += ["--school", school]
    result = app.test_cli_runner().invoke(args=args, env={"KIOSK_NEW_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output


SECRET_PATTERN = re.compile(r'id="totp-secret">([^<]+)<')
RECOVERY_PATTERN = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")


def login(app: Flask, email: str, password: str = PASSWORD) -> FlaskClient:
    """Sign in through the sign-in page; when it asks for the second factor, set it up (as
    the person would, from the key on the page) or enter a code, so callers need not care."""
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"csrf_token": token, "email": email, "password": password}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    complete_second_factor(app, client, email, response.headers["Location"])
    return client


def complete_second_factor(app: Flask, client: FlaskClient, email: str, location: str) -> None:
    """After the password: set up the second factor, or enter a code, if the page asks."""
    if location.endswith("/login/setup-code"):
        enroll_at_sign_in(app, client, email)
    elif location.endswith("/login/code"):
        enter_code(app, client, email)


def enroll_at_sign_in(app: Flask, client: FlaskClient, email: str) -> list[str]:
    """Set up the second factor from the setup page; return the recovery codes shown."""
    page = client.get("/login/setup-code").get_data(as_text=True)
    secret = SECRET_PATTERN.search(page)
    token = CSRF_PATTERN.search(page)
    assert secret and token, page
    code = pyotp.TOTP(secret.group(1).replace(" ", "")).at(now_utc())
    response = client.post("/login/setup-code", data={"csrf_token": token.group(1), "code": code})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Your recovery codes" in body, body
    codes = RECOVERY_PATTERN.findall(body)
    app.extensions.setdefault("test_recovery_codes", {})[email] = list(codes)
    return codes


def next_code(app: Flask, email: str) -> str:
    """A code the server has not accepted yet: the one the app shows now, or the next one
    (accepted for a clock a little off). A third sign-in within the same half minute uses a
    recovery code kept from enrollment, as a person in a hurry could."""
    user = user_of(app, email)
    assert user.totp_secret, f"{email} has no second factor"
    totp = pyotp.TOTP(user.totp_secret)
    current = totp.timecode(now_utc())
    for step in (current, current + 1):
        if user.totp_last_step is None or step > user.totp_last_step:
            return totp.generate_otp(step)
    codes = app.extensions.get("test_recovery_codes", {}).get(email)
    if codes:
        return str(codes.pop())
    time.sleep(max(0.0, (current + 1) * totp.interval - now_utc().timestamp()) + 0.1)
    return next_code(app, email)


def enter_code(app: Flask, client: FlaskClient, email: str) -> None:
    token = csrf_token(client, "/login/code")
    response = client.post("/login/code", data={"csrf_token": token, "code": next_code(app, email)})
    assert response.status_code == 302, response.get_data(as_text=True)


def form_token(app: Flask, client: FlaskClient) -> str:
    """A valid CSRF token for this client's session, for a role shown no form to copy it from."""
    with client.session_transaction() as session:
        raw = session.setdefault("csrf_token", secrets.token_hex(20))
    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token").dumps(raw)


def user_of(app: Flask, email: str) -> User:
    with database(app).session_factory() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        session.expunge(user)
        return user


@pytest.fixture
def started(app: Flask, kiosk_client: FlaskClient) -> FlaskClient:
    tap_start(kiosk_client)
    deliver(app)
    return kiosk_client


def test_every_action_names_only_known_roles() -> None:
    from kiosk.models import ROLES

    for roles in ACTIONS.values():
        assert roles <= set(ROLES)
        assert "front_desk" not in roles


@pytest.mark.parametrize(
    ("role", "school", "allowed"),
    [
        (
            "designee",
            LINCOLN,
            {
                "office",
                "account",
                "encounter.read",
                "encounter.acknowledge",
                "encounter.message_desk",
                "encounter.confirm_document",
                "encounter.record",
                "encounter.resolve",
                "outbox.*",
                "delivery.details",
                "script.read",
            },
        ),
        (
            "counsel",
            None,
            {
                "office",
                "account",
                "encounter.*",
                "script.*",
                "ferpa.*",
                "api.read",
                "retention.hold",
            },
        ),
        (
            "reviewer",
            None,
            {
                "office",
                "account",
                "encounter.read",
                "script.read",
                "ferpa.read",
                "ferpa.record",
                "api.read",
            },
        ),
        (
            "admin",
            None,
            {
                "office",
                "account",
                "outbox.*",
                "delivery.details",
                "admin",
                "script.read",
                "script.draft",
            },
        ),
        ("front_desk", LINCOLN, set()),
    ],
)
def test_may_follows_the_table_and_denies_the_rest(
    app: Flask, district: Any, role: str, school: str | None, allowed: set[str]
) -> None:
    create_user(app, f"{role}@district.test", role, school)
    user = user_of(app, f"{role}@district.test")
    lincoln, riverside = district["school_ids"]

    def expected(action: str) -> bool:
        return action in allowed or f"{action.split('.')[0]}.*" in allowed

    with app.test_request_context():
        for action in ACTIONS:
            assert may(user, action, lincoln) is expected(action), action
            assert may(user, action, ANY_SCHOOL) is expected(action), action
            # A school grant does not reach another school.
            assert may(user, action, riverside) is (expected(action) and school is None), action
        assert not may(user, "no.such.action", lincoln)
        assert not may(None, "encounter.read", lincoln)


def test_a_reviewer_reads_the_record_but_changes_nothing(app: Flask, started: Any) -> None:
    create_user(app, "reviewer@district.test", "reviewer")
    reviewer = login(app, "reviewer@district.test")
    encounter = the_encounter(app)
    page = reviewer.get(f"/office/encounters/{encounter.public_id}")
    assert page.status_code == 200
    assert 'id="actions"' not in page.get_data(as_text=True)
    token = form_token(app, reviewer)
    base = f"/office/encounters/{encounter.public_id}"
    for path, data in [
        ("/acknowledge", {}),
        ("/document", {"doc_type": "judicial_warrant"}),
        ("/resolve", {"outcome": "left"}),
        ("/message", {"preset": "wait"}),
    ]:
        response = reviewer.post(base + path, data={"csrf_token": token, **data})
        assert response.status_code == 403, path
    after = the_encounter(app)
    assert after.status == encounter.status and after.doc_confirmed_type is None


def test_an_admin_is_sent_to_administration_and_sees_no_encounter(app: Flask, started: Any) -> None:
    admin = login(app, "admin@demo-district.example", "demo-password")
    response = admin.get("/office/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    assert "Administration" in admin.get("/admin/").get_data(as_text=True)
    assert admin.get("/office/outbox").status_code == 200
    encounter = the_encounter(app)
    assert admin.get(f"/office/encounters/{encounter.public_id}").status_code == 403
    assert admin.get("/office/encounters.json").status_code == 403


def test_a_counsel_acts_like_a_designee(app: Flask, started: Any) -> None:
    create_user(app, "counsel@district.test", "counsel")
    counsel = login(app, "counsel@district.test")
    encounter = the_encounter(app)
    page = f"/office/encounters/{encounter.public_id}"
    token = csrf_token(counsel, page)
    response = counsel.post(
        f"{page}/document", data={"csrf_token": token, "doc_type": "judicial_warrant"}
    )
    assert response.status_code == 302
    assert the_encounter(app).doc_confirmed_type == "judicial_warrant"
    with database(app).session_factory() as session:
        assert session.scalars(select(RoleGrant).where(RoleGrant.role == "counsel")).one()


@pytest.mark.parametrize(
    ("email", "password", "credited"),
    [
        ("dana.reyes@demo-district.example", "demo-password", True),
        ("jordan.kim@demo-district.example", "demo-password", False),
        ("admin@demo-district.example", "demo-password", False),
    ],
)
def test_an_ack_link_credits_its_contact_and_only_a_user_who_may_see_the_school(
    app: Flask, started: Any, email: str, password: str, credited: bool
) -> None:
    from kiosk.models import Acknowledgement, Contact
    from kiosk.notify.links import ack_token

    encounter = the_encounter(app)
    with database(app).session_factory() as session:
        contact = session.scalars(
            select(Contact).where(Contact.school_id == encounter.school_id, Contact.level == 1)
        ).first()
        assert contact is not None
        contact_id = contact.id
    client = login(app, email, password)
    path = f"/ack/{ack_token(app.config['SECRET_KEY'], encounter.public_id, contact_id)}"
    response = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert response.status_code == 200
    with database(app).session_factory() as session:
        ack = session.scalars(select(Acknowledgement)).one()
        assert ack.contact_id == contact_id
        assert (ack.user_id == user_of(app, email).id) is credited
        if not credited:
            assert ack.user_id is None


def test_the_live_list_cursor_moves_only_with_the_users_own_schools(
    app: Flask, district: Any
) -> None:
    from tests.conftest import tap_at

    jordan = login(app, "jordan.kim@demo-district.example", "demo-password")
    before = jordan.get("/office/encounters.json").get_json()["cursor"]
    tap_at(app, LINCOLN)
    assert jordan.get("/office/encounters.json").get_json()["cursor"] == before
    tap_at(app, "Riverside Middle School")
    assert jordan.get("/office/encounters.json").get_json()["cursor"] > before


OFFICE_CHANGES = [
    ("/acknowledge", {}),
    ("/message", {"preset": "on_my_way"}),
    ("/document", {"doc_type": "judicial_warrant"}),
    ("/mark/on_scene", {}),
    ("/mark/counsel", {}),
    ("/consent", {"result": "confirmed"}),
    ("/guardian", {"notice": "not_notified", "reason": "Not reached"}),
    ("/care", {"care": "Stays with the teacher"}),
    ("/resolve", {"outcome": "left", "notes": ""}),
]


def event_kinds(app: Flask) -> list[str]:
    from kiosk.models import EncounterEvent

    with database(app).session_factory() as session:
        return list(session.scalars(select(EncounterEvent.kind).order_by(EncounterEvent.id)))


@pytest.mark.parametrize("ending", ["resolved", "stood_down"])
def test_once_ended_every_office_change_is_refused_with_a_reason(
    app: Flask, started: FlaskClient, ending: str
) -> None:
    from kiosk.protocol.office import ENDED

    encounter = the_encounter(app)
    page = f"/office/encounters/{encounter.public_id}"
    dana = login(app, "dana.reyes@demo-district.example", "demo-password")
    token = csrf_token(dana, page)
    if ending == "resolved":
        response = dana.post(f"{page}/resolve", data={"csrf_token": token, "outcome": "left"})
    else:
        desk_token = csrf_token(started, "/desk/mistake")
        response = started.post("/desk/mistake", data={"csrf_token": desk_token})
    assert response.status_code == 302
    assert the_encounter(app).status == ending
    before = event_kinds(app)
    for path, data in OFFICE_CHANGES:
        response = dana.post(page + path, data={"csrf_token": token, **data})
        assert response.status_code == 302, path
        shown = dana.get(page).get_data(as_text=True)
        assert "has ended" in shown or "stood down" in shown, path
    assert event_kinds(app) == before
    after = the_encounter(app)
    assert after.status == ending
    assert after.designee_on_scene_at is None and after.consent_check is None
    assert after.guardian_notice is None and after.doc_confirmed_type is None
    assert ENDED.startswith("This encounter has ended")


def test_the_desk_after_resolution_adds_only_a_late_note(app: Flask, started: FlaskClient) -> None:
    from kiosk.models import LateAddition

    encounter = the_encounter(app)
    page = f"/office/encounters/{encounter.public_id}"
    dana = login(app, "dana.reyes@demo-district.example", "demo-password")
    token = csrf_token(dana, page)
    # The desk still shows the page it had before the office resolved the record.
    desk_token = csrf_token(started, "/desk/")
    dana.post(f"{page}/resolve", data={"csrf_token": token, "outcome": "left"})
    before = event_kinds(app)
    response = started.post("/desk/now/consent", data={"csrf_token": desk_token})
    assert response.status_code == 302
    assert event_kinds(app)[len(before) :] == ["late_addition"]
    after = the_encounter(app)
    assert after.status == "resolved"
    with database(app).session_factory() as session:
        additions = session.scalars(select(LateAddition)).all()
        assert all(a.encounter_id == encounter.id for a in additions)
