"""The review log in Chromium: a reviewer signs in, finds an ended encounter by its outcome
with the keyboard, and follows the row to its record; searches by word and by a person's
name and opens the encounter's review page. axe-core checks each page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from kiosk.models import Encounter, School, ScriptVersion
from tests.browser.axe import assert_accessible
from tests.browser.conftest import BIN, SCHOOL, Console, KioskServer, run, sign_in

NAMED = "Maria Example"
# Recorded as the desk would, in the server's own configuration (its keys seal the text and
# key the search digests), by a short script run with the server's environment.
RECORD_SCRIPT = """
from datetime import UTC, datetime, timedelta
from sqlalchemy import select
from kiosk import create_app
from kiosk.db import writing
from kiosk.models import Agent, Encounter, NamedPerson, School, ScriptVersion
from kiosk.protocol import search
from kiosk.sealing import blind_index
from kiosk.webdb import database

app = create_app()
key = app.config["INDEX_KEY"]
started = datetime.now(UTC) - timedelta(days=2)
with app.app_context(), writing(), database(app).session_factory() as session, session.begin():
    school = session.scalars(select(School).where(School.name == %(school)r)).one()
    version = session.scalars(select(ScriptVersion).order_by(ScriptVersion.id)).first()
    encounter = Encounter(
        school_id=school.id, started_at=started, status="resolved",
        resolved_at=started + timedelta(minutes=25), outcome="left",
        first_acknowledged_at=started + timedelta(minutes=1),
        script_version_id=version.id, purpose="Said it is a welfare check.",
    )
    session.add(encounter)
    session.flush()
    session.add(Agent(encounter_id=encounter.id, position=1, name="R. Alvarez",
                      agency_printed="Homeland Security Investigations"))
    session.add(NamedPerson(encounter_id=encounter.id, position=1, name=%(name)r,
                            name_index=blind_index(key, %(name)r), relation="student"))
    session.flush()
    search.reindex(session, encounter, key)
    print(encounter.public_id)
"""

pytestmark = pytest.mark.browser

REVIEWER = "reviewer@demo-district.example"
PASSWORD = "reviewer-password-123"  # noqa: S105 - a test account's password


@pytest.fixture(scope="module")
def review_server(kiosk_servers: Callable[..., KioskServer]) -> KioskServer:
    """A server of its own, so the ended encounters added here surprise no other test."""
    # With its access log on standard output, so a test can read every line it writes.
    server = kiosk_servers(REVIEW_TEST_SERVER="1", KIOSK_ACCESS_LOG="-")
    run(
        [str(BIN / "flask"), "--app", "app", "users", "create", "--email", REVIEWER]
        + ["--name", "Riley Reviewer", "--role", "reviewer"],
        {**server.env, "KIOSK_NEW_PASSWORD": PASSWORD},
    )
    return server


def ended_encounters(server: KioskServer) -> dict[str, str]:
    """Two encounters at the school that ended days ago, with different outcomes, as the
    office would have closed them; return their public ids by outcome."""
    engine = create_engine(server.env["KIOSK_DATABASE_URL"])
    started = datetime.now(UTC) - timedelta(days=3)
    ids = {}
    with Session(engine, info=server.record_session_info()) as session, session.begin():
        school = session.scalars(select(School).where(School.name == SCHOOL)).one()
        version = session.scalars(select(ScriptVersion).order_by(ScriptVersion.id)).first()
        assert version is not None
        for minutes, outcome in ((0, "left"), (30, "waited")):
            encounter = Encounter(
                school_id=school.id,
                started_at=started + timedelta(minutes=minutes),
                status="resolved",
                resolved_at=started + timedelta(minutes=minutes + 20),
                outcome=outcome,
                doc_first_impression="administrative_warrant",
                first_acknowledged_at=started + timedelta(minutes=minutes + 2),
                script_version_id=version.id,
            )
            session.add(encounter)
            session.flush()
            ids[outcome] = encounter.public_id
    engine.dispose()
    return ids


def test_a_reviewer_finds_an_ended_encounter_by_outcome_and_opens_its_record(
    review_server: KioskServer, new_context: Any, console: Console
) -> None:
    ids = ended_encounters(review_server)
    base = review_server.base_url
    page = new_context().new_page()
    console.watch(page)
    sign_in(page, base, REVIEWER, PASSWORD)
    page.goto(base + "/office/")
    page.get_by_role("navigation", name="Office").get_by_role("link", name="Review log").click()
    expect(page.get_by_role("heading", name="Review log")).to_be_visible()
    expect(page.locator("#review-log tbody tr")).to_have_count(2)
    assert_accessible(page)

    page.get_by_label("Outcome").select_option(label="They left")
    page.get_by_label("Outcome").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Stood down at the desk")).to_be_focused()
    page.get_by_role("button", name="Show").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#review-log tbody tr")).to_have_count(1)
    row = page.locator(f'#review-log tr[data-id="{ids["left"]}"]')
    expect(row).to_contain_text("Resolved: They left")
    expect(row).to_contain_text("Administrative warrant")
    expect(page.get_by_label("Outcome")).to_have_value("left")
    assert "outcome=left" in page.url
    assert_accessible(page)

    row.get_by_role("link", name="Open record").click()
    page.wait_for_url(f"{base}/review/encounters/{ids['left']}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def test_a_reviewer_searches_by_word_and_by_name_and_opens_the_record(
    review_server: KioskServer, new_context: Any, console: Console
) -> None:
    script = RECORD_SCRIPT % {"school": SCHOOL, "name": NAMED}
    public_id = run([str(BIN / "python"), "-c", script], review_server.env).strip()
    base = review_server.base_url
    page = new_context().new_page()
    console.watch(page)
    sign_in(page, base, REVIEWER, PASSWORD)
    page.goto(base + "/review/")
    assert_accessible(page)

    page.get_by_label("Open or ended").select_option(label="Ended")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/review/?*state=ended*")
    page.get_by_label("Words in an agent's name, the agency or the stated purpose").fill("welf*")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"{base}/review/search")
    expect(page.locator("#review-log tbody tr")).to_have_count(1)
    expect(page.locator(f'#review-log tr[data-id="{public_id}"]')).to_be_visible()
    # The filter chosen before the search still applies, and the words stay in their box.
    expect(page.locator('#review-search input[name="state"]')).to_have_value("ended")
    expect(page.get_by_label("Words in an agent's name")).to_have_value("welf*")
    assert_accessible(page)

    page.get_by_label("Words in an agent's name").fill("")
    page.get_by_label("A person named in the encounter").fill("maria  example")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#review-log tbody tr")).to_have_count(1)
    assert page.url == f"{base}/review/search"

    page.locator(f'#review-log tr[data-id="{public_id}"]').get_by_role(
        "link", name="Open record"
    ).click()
    page.wait_for_url(f"{base}/review/encounters/{public_id}")
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(page.locator("#record")).to_contain_text(NAMED)
    expect(page.locator("#record")).to_contain_text("R. Alvarez")
    assert_accessible(page)

    # Neither the name nor the words searched for reach the access log: only the path.
    log = review_server.log_text()
    assert "POST /review/search" in log
    for searched in ("Maria", "maria", "welf", "Example"):
        assert searched not in log
