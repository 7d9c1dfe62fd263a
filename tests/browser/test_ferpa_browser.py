"""FERPA records in Chromium: a reviewer follows "Student records (FERPA)" from a report,
matches a named person to a new student, and opens the student's file, which names no other
student of the encounter and prints without its buttons. axe-core checks both pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from kiosk import create_app
from tests.browser.axe import assert_accessible
from tests.browser.conftest import BIN, Console, KioskServer, run, sign_in
from tests.test_ferpa import MARIA, seed

pytestmark = pytest.mark.browser

REVIEWER = "reviewer@demo-district.example"
PASSWORD = "reviewer-password-123"  # noqa: S105 - a test account's password


@pytest.fixture(scope="module")
def ferpa_server(kiosk_servers: Callable[..., KioskServer]) -> KioskServer:
    """A server of its own, so the encounter added here surprises no other test."""
    server = kiosk_servers(FERPA_TEST_SERVER="1")
    run(
        [str(BIN / "flask"), "--app", "app", "users", "create", "--email", REVIEWER]
        + ["--name", "Riley Reviewer", "--role", "reviewer"],
        {**server.env, "KIOSK_NEW_PASSWORD": PASSWORD},
    )
    return server


def seeded(server: KioskServer) -> str:
    """Two students named in one encounter, sealed with the server's own keys."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.env.items():
            patch.setenv(name, value)
        app = create_app()
    return seed(app, datetime.now(UTC) - timedelta(days=1))


def test_a_reviewer_matches_a_student_and_prints_the_students_file(
    ferpa_server: KioskServer, new_context: Any, console: Console
) -> None:
    public_id = seeded(ferpa_server)
    base = ferpa_server.base_url
    page = new_context().new_page()
    console.watch(page)
    sign_in(page, base, REVIEWER, PASSWORD)
    page.goto(f"{base}/review/encounters/{public_id}/report")
    page.get_by_role("link", name="Student records (FERPA)").click()
    page.wait_for_url(f"{base}/ferpa/encounters/{public_id}")
    expect(page.get_by_role("heading", name="1. Maria Alvarez")).to_be_visible()
    assert_accessible(page)

    section = page.locator("#person-1-section")
    section.get_by_label("An enrolled student not yet in the records (add them)").check()
    section.get_by_label("Name as enrolled (new student)").fill(MARIA)
    section.get_by_label("Local student ID (optional)").fill("S-4410")
    section.get_by_role("button", name="Save the decision").click()
    expect(page.locator("#person-1-now")).to_have_text("Matched to a student: Maria Alvarez")

    section.get_by_role("link", name="Student's file").click()
    expect(
        page.get_by_role("heading", name="Record of requests for education records")
    ).to_be_visible()
    expect(page.locator("#student-file")).to_contain_text("Pat Officer")
    expect(page.locator("#student-file")).to_contain_text("[another person named]")
    assert "Tomas" not in page.content()
    assert_accessible(page)

    page.emulate_media(media="print")
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Office")).to_be_hidden()
    expect(
        page.get_by_role("heading", name="Record of requests for education records")
    ).to_be_visible()
