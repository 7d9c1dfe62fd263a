"""Retention and legal hold: `retention run` removes the content of ended encounters past the
retention period, never one on hold, keeps the audit chain verifiable, and a hold racing a
purge ends one way or the other, never both. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from kiosk import create_app, retention
from kiosk.clock import now_utc
from kiosk.config import ConfigError
from kiosk.db import unit_of_work
from kiosk.models import AuditEntry, Encounter, EncounterEvent, NamedPerson, RoleGrant
from kiosk.models.review import PrivilegedNote, SearchTerm
from kiosk.protocol import search
from kiosk.sealing import blind_index
from kiosk.webdb import database
from tests.conftest import csrf_token, enroll_client, settings, tap_start
from tests.test_photos import jpeg_with_gps, upload
from tests.test_policy import create_user, login
from tests.test_races import together
from tests.test_sealing import ADDRESS, DANA, MESSAGE, NAME, PURPOSE

DAYS = 30
AGENT = "Ravelline Ostrowicz"
WITNESS = "Mrs. Quenby Harrowgate"
REASON = "Notice of claim received from counsel for a family"
COUNSEL = "counsel@district.test"
REVIEWER = "reviewer@district.test"


@pytest.fixture
def short(make_app: Any) -> Flask:
    """An app whose retention period is the shortest allowed."""
    return make_app(RETENTION_DAYS=DAYS)


def cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


def typed(app: Flask, desk: FlaskClient) -> Encounter:
    """Tap, then type a name, the purpose and a document's names through the real desk pages
    (as tests.test_sealing.plant does), and send the desk a message from the office."""
    assert tap_start(desk).status_code == 302
    agent = desk.post(
        "/desk/agents",
        data={
            "csrf_token": csrf_token(desk, "/desk/agents"),
            "name": AGENT,
            "badge_number": "4471",
            "agency_printed": "Homeland Security Investigations",
            "agency_pick": "hsi",
        },
    )
    assert agent.status_code == 302
    desk.post(
        "/desk/request",
        data={
            "csrf_token": csrf_token(desk, "/desk/request"),
            "purpose": PURPOSE,
            "action": "add_person",
            "person_name": NAME,
            "relation": "student",
        },
    )
    desk.post(
        "/desk/document",
        data={
            "csrf_token": csrf_token(desk, "/desk/document"),
            "shown": "unsure",
            "names_addresses": ADDRESS,
        },
    )
    assert upload(desk, jpeg_with_gps()).status_code == 302
    with database(app).session_factory() as session:
        encounter = session.scalars(select(Encounter).order_by(Encounter.id.desc())).first()
        assert encounter is not None and encounter.purpose == PURPOSE
    office = login(app, DANA, "demo-password")
    page = f"/office/encounters/{encounter.public_id}"
    office.post(f"{page}/message", data={"csrf_token": csrf_token(office, page), "text": MESSAGE})
    return encounter


def ended(app: Flask, desk: FlaskClient, days_ago: int = DAYS + 1) -> Encounter:
    """A typed encounter, resolved by the designee, its end moved back by days_ago."""
    encounter = typed(app, desk)
    late_token = csrf_token(desk, "/desk/outcome")
    office = login(app, DANA, "demo-password")
    page = f"/office/encounters/{encounter.public_id}"
    response = office.post(
        f"{page}/resolve",
        data={"csrf_token": csrf_token(office, page), "outcome": "left", "notes": "Left at 10"},
    )
    assert response.status_code == 302
    # The desk's form sent after the office resolved is kept as a late addition.
    late = desk.post("/desk/outcome", data={"csrf_token": late_token, "witnesses": WITNESS})
    assert late.status_code == 302
    with unit_of_work(database(app).session_factory) as session:
        row = session.get(Encounter, encounter.id)
        assert row is not None and row.status == "resolved"
        row.resolved_at = now_utc() - timedelta(days=days_ago)
    return encounter


def raw(app: Flask, sql: str, **params: Any) -> list[Any]:
    with database(app).session_factory() as session:
        return list(session.execute(text(sql), params).all())


def audit_actions(app: Flask) -> list[tuple[str, str, str]]:
    with database(app).session_factory() as session:
        return [
            (e.action, e.subject, e.details)
            for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        ]


def finds_name(app: Flask) -> bool:
    key = app.config["INDEX_KEY"]
    with database(app).session_factory() as session:
        found = session.scalars(
            select(NamedPerson).where(NamedPerson.name_index == blind_index(key, NAME))
        ).all()
    return bool(found)


def indexed(app: Flask, encounter_id: int) -> set[str]:
    """The encounter's search digests, as the review log's search reads them."""
    with database(app).session_factory() as session:
        rows = session.scalars(
            select(SearchTerm.digest).where(SearchTerm.encounter_id == encounter_id)
        )
        return set(rows)


def event_rows(app: Flask) -> list[tuple[Any, ...]]:
    with database(app).session_factory() as session:
        return [
            (e.id, e.seq, e.kind, e.data)
            for e in session.scalars(select(EncounterEvent).order_by(EncounterEvent.id))
        ]


def test_run_removes_the_content_of_an_encounter_past_the_period(
    short: Flask, district: Any
) -> None:
    app = short
    desk, _ = enroll_client(app, "Lincoln Elementary School")
    encounter = ended(app, desk)
    events_before = event_rows(app)
    assert finds_name(app)
    with unit_of_work(database(app).session_factory) as session:
        author_id = session.scalar(select(RoleGrant.user_id).where(RoleGrant.role == "admin"))
        assert author_id is not None
        session.add(
            PrivilegedNote(encounter_id=encounter.id, author_user_id=author_id, text=MESSAGE)
        )
    agent_words = search.digests_of(app.config["INDEX_KEY"], [AGENT, PURPOSE])
    agency_words = search.digests_of(app.config["INDEX_KEY"], ["Homeland Security"])
    assert agent_words <= indexed(app, encounter.id) and agency_words <= indexed(app, encounter.id)
    office = login(app, DANA, "demo-password")
    shown = office.get(f"/office/encounters/{encounter.public_id}").get_data(as_text=True)
    assert all(word in shown for word in (NAME, PURPOSE, ADDRESS, MESSAGE, AGENT, WITNESS))

    result = cli(app, "retention", "run")

    assert result.exit_code == 0, result.output
    assert f"purged {encounter.public_id}" in result.output
    assert "retention: 1 encounter(s)" in result.output
    # Raw SQL: no ciphertext and no plain text left in the sealed columns.
    people = raw(app, "SELECT name, name_index FROM named_people")
    assert people == [("", retention.REMOVED_INDEX)]
    assert not finds_name(app)
    sealed = raw(
        app,
        "SELECT purpose, resolution_notes, purged_at FROM encounters WHERE id = :id",
        id=encounter.id,
    )
    assert sealed[0][0] is None and sealed[0][1] is None and sealed[0][2] is not None
    assert raw(app, "SELECT names_addresses FROM documents") == [(None,)]
    assert raw(app, "SELECT text FROM desk_messages") == [("",)]
    assert raw(app, "SELECT content FROM late_additions") == [("",)]
    assert raw(app, "SELECT name, badge_number, agency_printed FROM agents") == [
        (None, None, "Homeland Security Investigations")
    ]
    assert raw(app, "SELECT content, stored_name FROM photos") == [(None, None)]
    for table, column in (
        ("named_people", "name"),
        ("desk_messages", "text"),
        ("late_additions", "content"),
    ):
        rows = raw(app, f"SELECT count(*) FROM {table} WHERE {column} LIKE 'sealed:%'")  # noqa: S608
        assert rows == [(0,)]
    # The events are untouched; the chain gained one entry and still verifies.
    assert event_rows(app) == events_before
    purge = [a for a in audit_actions(app) if a[0] == "retention.purge"]
    assert len(purge) == 1 and purge[0][1] == f"encounter:{encounter.public_id}"
    assert json.loads(purge[0][2]) == {
        "agents": 1,
        "desk_messages": 1,
        "documents": 1,
        "encounters": 1,
        "late_additions": 1,
        "named_people": 1,
        "photos": 1,
        "privileged_notes": 1,
    }
    assert raw(app, "SELECT text FROM privileged_notes") == [("",)]
    # No removed word finds it in the review log's search any more; the agency still does.
    assert not agent_words & indexed(app, encounter.id)
    assert agency_words <= indexed(app, encounter.id)
    verify = cli(app, "audit", "verify")
    assert verify.exit_code == 0, verify.output
    # Pages say what happened where the content was.
    for path in (
        f"/office/encounters/{encounter.public_id}",
        f"/review/encounters/{encounter.public_id}/report",
    ):
        page = office.get(path)
        body = page.get_data(as_text=True)
        assert page.status_code == 200, path
        assert "Content removed under the retention policy on" in body
        for word in (NAME, PURPOSE, ADDRESS, MESSAGE, AGENT, WITNESS):
            assert word not in body
    # A second run finds nothing left to do.
    again = cli(app, "retention", "run")
    assert again.exit_code == 0 and "retention: 0 encounter(s)" in again.output


def test_a_held_encounter_is_kept_until_its_hold_is_released(short: Flask, district: Any) -> None:
    app = short
    desk, _ = enroll_client(app, "Lincoln Elementary School")
    encounter = ended(app, desk)

    held = cli(app, "retention", "hold", encounter.public_id, "--reason", REASON)
    assert held.exit_code == 0, held.output
    kept = cli(app, "retention", "run")

    assert kept.exit_code == 0 and "retention: 0 encounter(s)" in kept.output
    assert finds_name(app)
    with database(app).session_factory() as session:
        row = session.get(Encounter, encounter.id)
        assert row is not None and row.purpose == PURPOSE and row.purged_at is None
        assert row.hold_reason == REASON and row.held_at is not None
    # The reason is sealed at rest and never copied into the chain.
    stored = raw(app, "SELECT hold_reason FROM encounters WHERE id = :id", id=encounter.id)
    assert stored[0][0].startswith("sealed:v1:")
    assert all(REASON not in details for _a, _s, details in audit_actions(app))

    released = cli(app, "retention", "release", encounter.public_id)
    purged = cli(app, "retention", "run")

    assert released.exit_code == 0 and "hold released" in released.output
    assert purged.exit_code == 0 and f"purged {encounter.public_id}" in purged.output
    assert not finds_name(app)
    actions = [a[0] for a in audit_actions(app)]
    assert actions.index("encounter.hold") < actions.index("encounter.hold_release")
    assert actions.index("encounter.hold_release") < actions.index("retention.purge")
    assert cli(app, "audit", "verify").exit_code == 0


def test_purged_rows_need_no_key_so_rotation_can_retire_the_old_one(
    short: Flask, district: Any
) -> None:
    app = short
    desk, _ = enroll_client(app, "Lincoln Elementary School")
    ended(app, desk)
    assert cli(app, "retention", "run").exit_code == 0

    rotated = cli(app, "keys", "rotate")
    retired = cli(app, "keys", "rotate", "--retire")

    assert rotated.exit_code == 0, rotated.output
    assert retired.exit_code == 0, retired.output
    assert "only k2 is needed" in retired.output
    # Rotation left the emptied values empty: nothing to seal, no ciphertext of nothing.
    assert raw(app, "SELECT name, name_index FROM named_people") == [("", retention.REMOVED_INDEX)]
    assert raw(app, "SELECT text FROM desk_messages") == [("",)]
    assert raw(app, "SELECT content FROM late_additions") == [("",)]
    assert cli(app, "audit", "verify").exit_code == 0


def test_a_dry_run_names_what_would_go_and_writes_nothing(short: Flask, district: Any) -> None:
    app = short
    desk, _ = enroll_client(app, "Lincoln Elementary School")
    old = ended(app, desk)
    recent = ended(app, desk, days_ago=DAYS - 1)
    assert tap_start(desk).status_code == 302  # one still open
    chain = audit_actions(app)

    result = cli(app, "retention", "run", "--dry-run")

    assert result.exit_code == 0, result.output
    assert f"would purge {old.public_id}" in result.output
    assert recent.public_id not in result.output
    assert "1 encounter(s)" in result.output and "nothing was changed" in result.output
    assert audit_actions(app) == chain
    assert raw(app, "SELECT count(*) FROM encounters WHERE purged_at IS NOT NULL") == [(0,)]
    assert finds_name(app)


def test_only_counsel_sets_and_releases_a_hold_and_each_is_audited(
    app: Flask, district: Any, kiosk_client: FlaskClient
) -> None:
    encounter = typed(app, kiosk_client)
    page = f"/review/encounters/{encounter.public_id}/hold"
    create_user(app, REVIEWER, "reviewer")
    reviewer = login(app, REVIEWER)
    token = csrf_token(reviewer, f"/office/encounters/{encounter.public_id}")
    assert reviewer.get(page).status_code == 403
    report = f"/review/encounters/{encounter.public_id}/report"
    assert 'id="legal-hold-link"' not in reviewer.get(report).get_data(as_text=True)
    refused = reviewer.post(page, data={"csrf_token": token, "reason": REASON})
    assert refused.status_code == 403
    designee = login(app, DANA, "demo-password")
    assert designee.get(page).status_code == 403
    create_user(app, COUNSEL, "counsel")
    counsel = login(app, COUNSEL)
    assert f'href="{page}" id="legal-hold-link"' in counsel.get(report).get_data(as_text=True)

    empty = counsel.post(page, data={"csrf_token": csrf_token(counsel, page), "reason": "  "})
    too_long = counsel.post(
        page, data={"csrf_token": csrf_token(counsel, page), "reason": "Matter " * 60}
    )
    placed = counsel.post(page, data={"csrf_token": csrf_token(counsel, page), "reason": REASON})
    shown = counsel.get(page).get_data(as_text=True)

    assert empty.status_code == 422
    assert 'id="reason-error">Give the reason for the hold.' in empty.get_data(as_text=True)
    assert too_long.status_code == 422
    body = too_long.get_data(as_text=True)
    assert "Keep this under 300 characters." in body and "Matter Matter" in body
    assert placed.status_code == 302
    assert "On legal hold since" in shown and REASON in shown and "Test counsel" in shown
    with database(app).session_factory() as session:
        row = session.get(Encounter, encounter.id)
        assert row is not None and row.held_at is not None and row.held_by_user_id is not None

    released = counsel.post(f"{page}/release", data={"csrf_token": csrf_token(counsel, page)})

    assert released.status_code == 302
    assert "Not on legal hold." in counsel.get(page).get_data(as_text=True)
    holds = [a for a in audit_actions(app) if a[0].startswith("encounter.hold")]
    assert [a[0] for a in holds] == ["encounter.hold", "encounter.hold_release"]
    assert all(a[1] == f"encounter:{encounter.public_id}" for a in holds)
    assert all(REASON not in a[2] for a in holds)


def test_a_hold_cannot_keep_content_already_removed(short: Flask, district: Any) -> None:
    app = short
    desk, _ = enroll_client(app, "Lincoln Elementary School")
    encounter = ended(app, desk)
    assert cli(app, "retention", "run").exit_code == 0
    create_user(app, COUNSEL, "counsel")
    counsel = login(app, COUNSEL)
    page = f"/review/encounters/{encounter.public_id}/hold"

    shown = counsel.get(page).get_data(as_text=True)
    by_cli = cli(app, "retention", "hold", encounter.public_id, "--reason", REASON)

    assert "Content removed under the retention policy on" in shown
    assert 'name="reason"' not in shown
    assert by_cli.exit_code != 0 and "already removed" in by_cli.output


TRIALS = 3


def purge_and_hold_at_once(app: Flask, encounter_id: int) -> tuple[Any, Any]:
    """Run one purge and one hold of the encounter in two threads released together."""
    factory = database(app).session_factory
    key = app.config["AUDIT_KEY"]
    now = now_utc()

    def purge() -> Any:
        with unit_of_work(factory) as session:
            return retention.purge(
                session, encounter_id, now, DAYS, key, "cli", app.config["INDEX_KEY"]
            )

    def hold() -> Any:
        try:
            with unit_of_work(factory) as session:
                return retention.set_hold(session, encounter_id, now, REASON, None, key, "cli")
        except retention.RetentionError as exc:
            return exc

    purged, held = together(purge, hold)
    return purged, held


def test_a_purge_racing_a_hold_ends_held_and_intact_or_purged_and_not_held(
    short: Flask, district: Any
) -> None:
    app = short
    desk, _ = enroll_client(app, "Lincoln Elementary School")
    for _ in range(TRIALS):
        encounter = ended(app, desk)

        purged, held = purge_and_hold_at_once(app, encounter.id)

        with database(app).session_factory() as session:
            row = session.get(Encounter, encounter.id)
            assert row is not None
            person = session.scalars(
                select(NamedPerson).where(NamedPerson.encounter_id == encounter.id)
            ).one()
            if row.held_at is not None:
                # The hold came first: the purge found it held and removed nothing.
                assert purged is None and held is True
                assert row.purged_at is None and row.purpose == PURPOSE and person.name == NAME
            else:
                # The purge came first: the hold was refused with a reason.
                assert purged is not None and isinstance(held, retention.RetentionError)
                assert row.purged_at is not None and row.purpose is None and person.name == ""
    assert cli(app, "audit", "verify").exit_code == 0


@pytest.mark.parametrize("days", ["29", "0", "-5"])
def test_a_retention_period_below_the_minimum_is_refused_at_start(
    database_url: str, tmp_path: Any, days: str
) -> None:
    with pytest.raises(ConfigError, match="KIOSK_RETENTION_DAYS must be 30 or more"):
        create_app(settings(database_url, str(tmp_path), RETENTION_DAYS=int(days)))


def test_the_default_retention_period_is_finite(app: Flask) -> None:
    assert app.config["RETENTION_DAYS"] == 2557


def test_the_encounter_review_page_shows_the_hold_to_counsel_and_the_removal_to_all(
    short: Flask, district: Any
) -> None:
    app = short
    desk, _ = enroll_client(app, "Lincoln Elementary School")
    encounter = ended(app, desk)
    page = f"/review/encounters/{encounter.public_id}"
    create_user(app, COUNSEL, "counsel")
    create_user(app, REVIEWER, "reviewer")
    counsel, reviewer = login(app, COUNSEL), login(app, REVIEWER)

    before = counsel.get(page).get_data(as_text=True)
    assert 'id="legal-hold"' in before and "Place on legal hold" in before
    assert 'id="legal-hold"' not in reviewer.get(page).get_data(as_text=True)
    assert cli(app, "retention", "run").exit_code == 0
    for client in (counsel, reviewer):
        after = client.get(page).get_data(as_text=True)
        assert 'id="content-removed"' in after
        assert "Content removed under the retention policy on" in after
        assert NAME not in after and AGENT not in after and PURPOSE not in after
    assert "A hold can no longer keep it." in counsel.get(page).get_data(as_text=True)
