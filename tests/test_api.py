"""API v1: bearer tokens per reviewer or counsel, the review log's filters and pages as
JSON, each encounter and its events with the people named counted and never named, every
use audited, and no session cookie ever set."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from kiosk import audit
from kiosk.models import (
    Agent,
    ApiToken,
    AuditEntry,
    Encounter,
    OutboxMessage,
    RoleGrant,
    User,
)
from kiosk.review.forms import ReviewFilterForm
from kiosk.review.log import PAGE_SIZE
from kiosk.webdb import database
from tests.test_policy import LINCOLN, RIVERSIDE, create_user, form_token, login
from tests.test_review_export import name_people
from tests.test_review_log import BASE, add, school_id, school_public_id

REVIEWER = "reviewer@district.test"


def cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


def make_token(app: Flask, email: str = REVIEWER, label: str = "Records export") -> str:
    result = cli(app, "api-tokens", "create", email, "--label", label)
    assert result.exit_code == 0, result.output
    value = result.output.splitlines()[0]
    assert value.startswith("kapi_")
    return value


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def get(app: Flask, path: str, value: str, client: FlaskClient | None = None) -> Any:
    response = (client or app.test_client()).get(f"/api/v1{path}", headers=bearer(value))
    # No API answer ever sets, refreshes or clears a cookie.
    assert "Set-Cookie" not in response.headers
    return response


def listed(app: Flask, value: str, query: str = "") -> list[str]:
    response = get(app, f"/encounters{query}", value)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["public_id"] for item in response.get_json()["items"]]


@pytest.fixture
def token(app: Flask, district: dict[str, Any]) -> str:
    create_user(app, REVIEWER, "reviewer")
    return make_token(app)


def test_the_filters_narrow_the_list_as_they_narrow_the_log(app: Flask, token: str) -> None:
    plain = add(app, started_at=BASE)
    phone = add(app, started_at=BASE - timedelta(hours=1), channel="phone")
    ended = add(app, started_at=BASE - timedelta(hours=2), status="resolved", outcome="left")
    warrant = add(
        app, started_at=BASE - timedelta(hours=3), doc_first_impression="judicial_warrant"
    )
    riverside = add(app, RIVERSIDE, started_at=BASE - timedelta(days=2))
    assert listed(app, token) == [plain, phone, ended, warrant, riverside]
    assert listed(app, token, "?channel=phone") == [phone]
    assert listed(app, token, "?state=ended&outcome=left") == [ended]
    assert listed(app, token, "?document=judicial_warrant") == [warrant]
    assert listed(app, token, f"?school={school_public_id(app, RIVERSIDE)}") == [riverside]
    assert listed(app, token, "?date_to=2026-11-01") == [riverside]
    staff = add(app, started_at=BASE - timedelta(hours=4), request_kinds="staff,entry")
    assert listed(app, token, "?request_kind=entry") == [staff]
    assert listed(app, token, "?agency=usms") == []
    # A filter that is not valid is named, and no list pretends to be filtered.
    response = get(app, "/encounters?channel=carrier_pigeon&date_from=2026-11-03", token)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_filters"
    assert set(body["fields"]) == {"channel"}
    response = get(app, "/encounters?date_from=2026-11-03&date_to=2026-11-01", token)
    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"date_to"}


def test_pages_follow_by_key_and_an_encounter_arriving_meanwhile_shifts_nothing(
    app: Flask, token: str
) -> None:
    made = [add(app, started_at=BASE - timedelta(minutes=i)) for i in range(PAGE_SIZE + 5)]
    first = get(app, "/encounters?channel=in_person", token).get_json()
    assert [i["public_id"] for i in first["items"]] == made[:PAGE_SIZE]
    assert first["next_cursor"]
    assert "channel=in_person" in first["next_url"]
    add(app, started_at=BASE + timedelta(minutes=1))
    second = get(app, first["next_url"].removeprefix("/api/v1"), token).get_json()
    assert [i["public_id"] for i in second["items"]] == made[PAGE_SIZE:]
    assert second["next_cursor"] is None and second["next_url"] is None


def test_an_encounter_counts_the_people_named_and_never_names_them(app: Flask, token: str) -> None:
    public_id = add(
        app,
        status="resolved",
        outcome="left",
        request_kinds="student_info,entry",
        purpose="Asked about Alexandra Quintero-Whitfield",
        first_alert_sent_at=BASE + timedelta(seconds=2),
    )
    name_people(app, public_id, ["Alexandra Quintero-Whitfield", "Bo Lindqvist-Amari"])
    with database(app).session_factory() as session, session.begin():
        encounter = session.scalar(select(Encounter).where(Encounter.public_id == public_id))
        assert encounter is not None
        session.add(
            Agent(
                encounter_id=encounter.id,
                position=1,
                name="Agent Smith",
                badge_number="B-100",
                agency_printed="HSI",
                id_shown="when_asked,hidden",
            )
        )
        session.add(
            OutboxMessage(
                encounter_id=encounter.id,
                channel="email",
                kind="alert",
                level=1,
                idempotency_key="test-1",
                recipient="office@district.test",
                status="sent",
                sent_at=BASE + timedelta(seconds=2),
            )
        )
    response = get(app, f"/encounters/{public_id}", token)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Quintero" not in text and "Lindqvist" not in text
    body = response.get_json()
    assert body["people_named"] == 2
    assert body["request"] == {
        "kinds": ["student_info", "entry"],
        "other_recorded": False,
        "purpose_recorded": True,
        "consent_claimed": None,
    }
    assert body["agents"][0]["name"] == "Agent Smith"
    assert body["agents"][0]["id_shown"] == ["when_asked", "hidden"]
    assert body["notifications"] == [
        {
            "channel": "email",
            "kind": "alert",
            "level": 1,
            "status": "sent",
            "created_at": body["notifications"][0]["created_at"],
            "sent_at": "2026-11-02T15:00:02Z",
            "acknowledged_at": None,
        }
    ]
    assert body["outcome"] == "left"
    listed_row = get(app, "/encounters", token).get_json()["items"][0]
    assert listed_row["people_named"] == 2
    events = get(app, body["events_url"].removeprefix("/api/v1"), token)
    assert events.status_code == 200
    assert events.get_json() == {"public_id": public_id, "events": []}


def test_the_desks_events_come_back_in_order_with_free_text_as_recorded(
    app: Flask, token: str, kiosk_client: FlaskClient
) -> None:
    from tests.conftest import tap_start, the_encounter

    assert tap_start(kiosk_client).status_code == 302
    public_id = the_encounter(app).public_id
    events = get(app, f"/encounters/{public_id}/events", token).get_json()["events"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert events[0]["kind"] == "started"
    assert get(app, "/encounters/Alexandra-Quintero", token).status_code == 404
    with database(app).session_factory() as session:
        subjects = session.scalars(
            select(AuditEntry.subject).where(AuditEntry.action == "api.read")
        ).all()
    # What was typed into the address is not kept: it could be a name.
    assert subjects == [f"encounter:{public_id}", "encounter:(no such id)"]


def test_a_token_works_until_revoked_and_every_use_is_audited(app: Flask, token: str) -> None:
    public_id = add(app)
    assert get(app, f"/encounters/{public_id}", token).status_code == 200
    assert get(app, "/encounters", token).status_code == 200
    with database(app).session_factory() as session:
        uses = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "api.read").order_by(AuditEntry.seq)
        ).all()
        row = session.scalars(select(ApiToken)).one()
        assert row.last_used_at is not None
        assert token not in json.dumps([u.details for u in uses])
    assert [u.subject for u in uses] == [f"encounter:{public_id}", "encounters"]
    assert json.loads(uses[0].details)["api_key"] == row.id
    listing = cli(app, "api-tokens", "list")
    assert row.prefix in listing.output and "Records export" in listing.output
    assert token not in listing.output
    assert cli(app, "api-tokens", "revoke", str(row.id)).output.startswith("revoked")
    refused = get(app, "/encounters", token)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.get_json()["error"] == "invalid_token"
    again = cli(app, "api-tokens", "revoke", str(row.id))
    assert "already revoked" in again.output


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer kapi_not-a-token", "Basic cmV2aWV3ZXI6eA=="]
)
def test_no_token_or_a_wrong_one_is_refused_with_the_bearer_challenge(
    app: Flask, token: str, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = app.test_client().get("/api/v1/encounters", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"] in {"invalid_request", "invalid_token"}
    assert "Set-Cookie" not in response.headers


def test_a_disabled_holders_token_stops_and_a_lost_role_is_refused(app: Flask, token: str) -> None:
    assert get(app, "/encounters", token).status_code == 200
    assert cli(app, "users", "disable", REVIEWER).exit_code == 0
    assert get(app, "/encounters", token).status_code == 401
    assert cli(app, "users", "enable", REVIEWER).exit_code == 0
    assert get(app, "/encounters", token).status_code == 200
    assert cli(app, "users", "grant", REVIEWER, "designee", "--school", LINCOLN).exit_code == 0
    assert cli(app, "users", "revoke", REVIEWER, "reviewer").exit_code == 0
    refused = get(app, "/encounters", token)
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "insufficient_scope"


def test_only_reviewers_and_counsel_may_hold_a_token(app: Flask, district: Any) -> None:
    create_user(app, "counsel@district.test", "counsel")
    assert get(app, "/encounters", make_token(app, "counsel@district.test")).status_code == 200
    for role in ("designee", "admin"):
        email = f"{role}@district.test"
        create_user(app, email, role, LINCOLN if role == "designee" else None)
        result = cli(app, "api-tokens", "create", email, "--label", "x")
        assert result.exit_code != 0
        assert "only a reviewer or counsel" in result.output
    with database(app).session_factory() as session:
        assert session.scalar(select(func.count()).select_from(ApiToken)) == 1


def test_a_signed_in_browser_gets_no_cookie_and_no_access_from_the_api(
    app: Flask, token: str
) -> None:
    client = login(app, REVIEWER)
    # The session cookie alone opens nothing here.
    response = client.get("/api/v1/encounters")
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers
    # With a token as well, the answer still leaves the cookie alone.
    assert get(app, "/encounters", token, client).status_code == 200
    assert client.get("/review/").status_code == 200


def test_the_openapi_document_is_public_and_unknown_addresses_answer_in_json(
    app: Flask,
) -> None:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/encounters",
        "/encounters/{public_id}",
        "/encounters/{public_id}/events",
        "/ferpa/records",
        "/ferpa/records/{public_id}",
        "/ferpa/students/{public_id}/records",
        "/openapi.json",
    }
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    missing = app.test_client().get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "not_found"


TOKEN_SHOWN = re.compile(r'<code id="api-token">([^<]+)</code>')


def test_an_admin_makes_a_token_shown_once_and_revokes_it_in_the_admin_pages(
    app: Flask, district: Any
) -> None:
    create_user(app, REVIEWER, "reviewer")
    admin = login(app, "admin@demo-district.example", "demo-password")
    with database(app).session_factory() as session:
        holder = session.scalar(select(User).where(User.email == REVIEWER))
        assert holder is not None
        holder_id = holder.public_id
    page = admin.get("/admin/api-tokens").get_data(as_text=True)
    assert f'value="{holder_id}"' in page
    # A missing label comes back with what was chosen and the reason beside the field.
    refused = admin.post(
        "/admin/api-tokens",
        data={"csrf_token": form_token(app, admin), "holder": holder_id, "label": ""},
    )
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert f'<option selected value="{holder_id}">' in body
    assert "Enter what will use the token." in body
    made = admin.post(
        "/admin/api-tokens",
        data={"csrf_token": form_token(app, admin), "holder": holder_id, "label": "Board report"},
    )
    assert made.status_code == 200
    value = TOKEN_SHOWN.findall(made.get_data(as_text=True))[0]
    assert get(app, "/encounters", value).status_code == 200
    listing = admin.get("/admin/api-tokens").get_data(as_text=True)
    assert "Board report" in listing and value[:12] in listing and value not in listing
    with database(app).session_factory() as session:
        row = session.scalars(select(ApiToken)).one()
        token_id = row.id
    response = admin.post(
        f"/admin/api-tokens/{token_id}/revoke", data={"csrf_token": form_token(app, admin)}
    )
    assert response.status_code == 302
    assert get(app, "/encounters", value).status_code == 401
    assert "Revoked" in admin.get("/admin/api-tokens").get_data(as_text=True)
    with database(app).session_factory() as session:
        changes = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.like("admin.api_token.%"))
            .order_by(AuditEntry.seq)
        ).all()
    assert [c.action for c in changes] == ["admin.api_token.create", "admin.api_token.revoke"]
    assert all(c.subject == f"api_token:{token_id}" for c in changes)
    assert value not in json.dumps([c.details for c in changes])


def test_uses_racing_a_revoke_are_each_audited_and_none_outlives_it(app: Flask, token: str) -> None:
    from tests.test_races import together

    add(app)
    admin = login(app, "admin@demo-district.example", "demo-password")
    csrf = form_token(app, admin)
    with database(app).session_factory() as session:
        token_id = session.scalars(select(ApiToken.id)).one()

    def use() -> int:
        return int(get(app, "/encounters", token).status_code)

    def revoke() -> int:
        path = f"/admin/api-tokens/{token_id}/revoke"
        return int(admin.post(path, data={"csrf_token": csrf}).status_code)

    answers = together(*([use] * 6), revoke)
    assert answers[-1] == 302
    assert set(answers[:-1]) <= {200, 401}
    # Every answered read left its entry, in one unbroken chain; after the revoke, nothing.
    with database(app).session_factory() as session:
        reads = session.scalars(select(AuditEntry).where(AuditEntry.action == "api.read")).all()
        seqs = session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
        revoked = session.scalars(
            select(AuditEntry.seq).where(AuditEntry.action == "admin.api_token.revoke")
        ).one()
        assert audit.verify(session, app.config["AUDIT_KEY"]).ok
    assert len(reads) == answers.count(200)
    assert seqs == list(range(1, len(seqs) + 1))
    assert all(read.seq < revoked for read in reads)
    assert use() == 401


def test_a_token_reads_only_the_schools_its_holders_grants_cover(app: Flask, token: str) -> None:
    lincoln = add(app)
    riverside = add(app, RIVERSIDE, started_at=BASE - timedelta(hours=1))
    # A grant limited to one school (the admin pages give these roles district-wide, but the
    # policy reads whatever grant is stored).
    with database(app).session_factory() as session, session.begin():
        holder = session.scalar(select(User).where(User.email == REVIEWER))
        assert holder is not None
        grant = session.scalars(select(RoleGrant).where(RoleGrant.user_id == holder.id)).one()
        grant.school_id = school_id(app, LINCOLN)
    assert listed(app, token) == [lincoln]
    assert get(app, f"/encounters/{riverside}", token).status_code == 404
    assert get(app, f"/encounters/{riverside}/events", token).status_code == 404
    assert get(app, f"/encounters/{lincoln}", token).status_code == 200
    # Another school in the filter is refused like a made-up one.
    query = f"?school={school_public_id(app, RIVERSIDE)}"
    assert get(app, f"/encounters{query}", token).status_code == 400


def test_the_document_describes_exactly_the_routes_the_api_serves(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    served = {
        (rule.rule.removeprefix("/api/v1").replace("<public_id>", "{public_id}"), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    described = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert served == described
    parameters = document["paths"]["/encounters"]["get"]["parameters"]
    channel = next(p for p in parameters if p["name"] == "channel")
    assert "phone" in channel["schema"]["enum"]
    # Every filter the log's form reads is described, and nothing else.
    with app.test_request_context():
        form = ReviewFilterForm(formdata=None, schools=[])
    assert {p["name"] for p in parameters} == {field.name for field in form}
