"""The printable report in Chromium: a designee opens a record, follows "Printable report",
and the print view leaves out the menu and the Print button. axe-core checks the page."""

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
from tests.browser.conftest import SCHOOL, Console, KioskServer, sign_in

pytestmark = pytest.mark.browser

DANA = "dana.reyes@demo-district.example"  # designee, Lincoln Elementary


@pytest.fixture(scope="module")
def report_server(kiosk_servers: Callable[..., KioskServer]) -> KioskServer:
    """A server of its own, so the encounter added here surprises no other test."""
    return kiosk_servers(REPORT_TEST_SERVER="1")


def resolved_encounter(server: KioskServer) -> str:
    """An encounter at the school the office resolved an hour ago; return its public id."""
    engine = create_engine(server.env["KIOSK_DATABASE_URL"])
    started = datetime.now(UTC) - timedelta(hours=1)
    with Session(engine, info=server.record_session_info()) as session, session.begin():
        school = session.scalars(select(School).where(School.name == SCHOOL)).one()
        version = session.scalars(select(ScriptVersion).order_by(ScriptVersion.id)).first()
        assert version is not None
        encounter = Encounter(
            school_id=school.id,
            started_at=started,
            status="resolved",
            first_alert_sent_at=started + timedelta(seconds=5),
            first_acknowledged_at=started + timedelta(minutes=2),
            resolved_at=started + timedelta(minutes=25),
            outcome="left",
            doc_first_impression="administrative_warrant",
            script_version_id=version.id,
        )
        session.add(encounter)
        session.flush()
        public_id = encounter.public_id
    engine.dispose()
    return public_id


def test_a_designee_prints_the_report_without_the_menu_or_the_button(
    report_server: KioskServer, new_context: Any, console: Console
) -> None:
    public_id = resolved_encounter(report_server)
    base = report_server.base_url
    page = new_context().new_page()
    console.watch(page)
    sign_in(page, base, DANA, "demo-password")
    page.goto(f"{base}/office/encounters/{public_id}")
    link = page.get_by_role("link", name="Printable report")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/review/encounters/{public_id}/report")
    expect(page.get_by_role("heading", name="Incident report")).to_be_visible()
    expect(page.get_by_role("heading", name="Who was told and when")).to_be_visible()
    expect(page.locator("#outcome")).to_have_text("They left")
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    expect(page.get_by_role("navigation", name="Office")).to_be_visible()
    assert_accessible(page)

    page.emulate_media(media="print")
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Office")).to_be_hidden()
    expect(page.get_by_role("link", name="Back to the record")).to_be_hidden()
    expect(page.get_by_role("heading", name="Incident report")).to_be_visible()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(255, 255, 255)"
    assert_accessible(page)

    page.emulate_media(media="screen")
    page.get_by_role("link", name="Back to the record").click()
    page.wait_for_url(f"{base}/office/encounters/{public_id}")
    assert console.errors == []
