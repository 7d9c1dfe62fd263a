"""The legal hold in Chromium: counsel opens the printable report of a record that ended long
ago, follows "Legal hold", places the hold (after a refused empty reason), and `retention run`
keeps the record; released, the next run removes its content and the record page says so.
axe-core checks the hold page and the purged record."""

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

pytestmark = pytest.mark.browser

COUNSEL = "hold.counsel@district.test"
PASSWORD = "browser-password-123"  # noqa: S105 - a test account on a throwaway server
REASON = "Notice of claim from a family's lawyer"


@pytest.fixture(scope="module")
def retention_server(kiosk_servers: Callable[..., KioskServer]) -> KioskServer:
    """A server of its own with the shortest retention period, so purging surprises no other
    test."""
    return kiosk_servers(KIOSK_RETENTION_DAYS="30")


def ended_long_ago(server: KioskServer) -> str:
    """An encounter the office resolved 40 days ago; return its public id."""
    engine = create_engine(server.env["KIOSK_DATABASE_URL"])
    started = datetime.now(UTC) - timedelta(days=40)
    with Session(engine, info=server.record_session_info()) as session, session.begin():
        school = session.scalars(select(School).where(School.name == SCHOOL)).one()
        version = session.scalars(select(ScriptVersion).order_by(ScriptVersion.id)).first()
        assert version is not None
        encounter = Encounter(
            school_id=school.id,
            started_at=started,
            status="resolved",
            resolved_at=started + timedelta(minutes=25),
            outcome="left",
            script_version_id=version.id,
        )
        session.add(encounter)
        session.flush()
        public_id = encounter.public_id
    engine.dispose()
    return public_id


def flask(server: KioskServer, *args: str, **env: str) -> str:
    return run([str(BIN / "flask"), "--app", "app", *args], {**server.env, **env})


def test_counsel_holds_a_record_past_retention_then_releases_it_to_the_next_run(
    retention_server: KioskServer, new_context: Any, console: Console
) -> None:
    server = retention_server
    base = server.base_url
    public_id = ended_long_ago(server)
    flask(
        server,
        *("users", "create", "--email", COUNSEL, "--name", "Hold Counsel", "--role", "counsel"),
        KIOSK_NEW_PASSWORD=PASSWORD,
    )
    page = new_context().new_page()
    console.watch(page)
    sign_in(page, base, COUNSEL, PASSWORD)
    page.goto(f"{base}/review/encounters/{public_id}/report")
    with page.expect_navigation():
        page.get_by_role("link", name="Legal hold").click()
    expect(page.get_by_role("heading", name="Legal hold", level=1)).to_be_visible()
    expect(page.locator("#hold-state")).to_contain_text("Not on legal hold.")

    with page.expect_navigation():
        page.get_by_role("button", name="Place on legal hold").click()
    expect(page.locator("#reason-error")).to_have_text("Give the reason for the hold.")
    page.get_by_label("Reason for the hold").fill(REASON)
    with page.expect_navigation():
        page.get_by_role("button", name="Place on legal hold").click()
    expect(page.locator("#hold-state")).to_contain_text("On legal hold since")
    expect(page.locator("#hold-reason")).to_have_text(f"Reason: {REASON}")
    assert_accessible(page)
    kept = flask(server, "retention", "run")
    assert "retention: 0 encounter(s)" in kept

    with page.expect_navigation():
        page.get_by_role("button", name="Release the hold").click()
    expect(page.locator("#hold-state")).to_contain_text("Not on legal hold.")
    purged = flask(server, "retention", "run")
    assert f"purged {public_id}" in purged

    page.goto(f"{base}/office/encounters/{public_id}")
    expect(page.locator("#content-removed")).to_contain_text(
        "Content removed under the retention policy on"
    )
    assert_accessible(page)
    # The refused empty reason answers 422, which Chromium logs; nothing else may fail.
    assert [e for e in console.errors if "status of 422" not in e] == []
