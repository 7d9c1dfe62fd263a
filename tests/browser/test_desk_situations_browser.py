"""The desk under stress, in real Chromium: every situation reaches its words in three taps or
fewer from Notify, the words stay while the desk works, no button drops what was typed, the
cover still shows whom to call, and a stand-down needs its confirmation."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console, KioskServer
from tests.browser.test_kiosk_browser import (
    QUICK,
    check_axe,
    kiosk_page,
    step,
    tap_start,
)

pytestmark = pytest.mark.browser

STEPS = ("Now", "Your name", "Agents", "Request", "Document", "Emergency", "Outcome", "Finish")


def say(page: Page) -> Any:
    return page.locator("#say-line")


def expect_situation(page: Page, situation: str) -> None:
    expect(say(page)).to_have_attribute("data-situation", situation, timeout=QUICK)


def finish(page: Page) -> None:
    """Close the desk's part: the kiosk is ready for the next visitor."""
    step(page, "Finish")
    page.get_by_role("button", name="Finish and return to the start screen").click()
    expect(page.locator("#start-button")).to_be_visible(timeout=QUICK)


@dataclass(frozen=True)
class Path:
    """One situation: the channel chosen before Notify (a tap too), then the taps after it."""

    name: str
    situation: str
    taps: tuple[tuple[str, str], ...]  # (role, accessible name) clicked in order
    channel: str | None = None


def pick(title: str) -> tuple[tuple[str, str], ...]:
    return (("link", "They are showing a document"), ("button", title))


PATHS = [
    Path("emergency", "exigency", (("button", "They say it's an emergency"),)),
    Path("going in", "entry_without_consent", (("button", "They are going in"),)),
    Path("a student", "student_sought", (("button", "They want a student"),)),
    Path("records", "records_sought", (("button", "They want records or information"),)),
    Path(
        "a staff member",
        "staff_sought",
        (("link", "They want a staff member or a parent"), ("button", "A staff member")),
    ),
    Path(
        "a parent",
        "parent_sought",
        (
            ("link", "They want a staff member or a parent"),
            ("button", "A parent, guardian or other adult"),
        ),
    ),
    Path("warrant naming a person", "warrant_person", pick("Court warrant to arrest a person")),
    Path("court search warrant", "doc:judicial_warrant", pick("Court warrant to search a place")),
    Path("administrative warrant", "doc:administrative_warrant", pick("Homeland Security warrant")),
    Path(
        "court subpoena",
        "doc:judicial_subpoena",
        pick("Court subpoena or court order for records"),
    ),
    Path("grand jury subpoena", "doc:grand_jury_subpoena", pick("Grand jury subpoena")),
    Path(
        "administrative subpoena",
        "doc:dhs_subpoena",
        pick("Homeland Security subpoena for records"),
    ),
    Path("detainer", "doc:detainer", pick("Detainer: a request to hold a person in custody")),
    Path("notice to appear", "doc:notice_to_appear", pick("Notice to appear in immigration court")),
    Path("I-9 notice", "doc:i9_notice", pick("Notice of inspection of employment records")),
    Path("immigration court paper", "doc:unsure", pick('Paper from an "Immigration Court"')),
    Path("another document", "doc:other", pick("Another document")),
    Path("no document", "doc:none", pick("No document: a spoken request only")),
    Path("not sure", "doc:unsure", pick("Not sure")),
    Path("a phone call", "phone", (), channel="Phone"),
    Path("our staff elsewhere", "offsite", (), channel="Our staff, reporting from elsewhere"),
]


def test_every_situation_is_three_taps_or_fewer_from_notify_and_its_words_stay(
    server: KioskServer, new_context: Callable[..., Any], console: Console
) -> None:
    page = kiosk_page(new_context, server, console)
    taps_by_path = {}
    for path in PATHS:
        taps = 0
        if path.channel:
            page.get_by_role("group", name="How is the request made?").get_by_label(
                path.channel, exact=True
            ).check()
            taps += 1
        tap_start(page)
        for role, name in path.taps:
            page.get_by_role(role, name=re.compile("^" + re.escape(name))).first.click()
            taps += 1
        expect_situation(page, path.situation)
        taps_by_path[path.name] = taps
        # The words follow the desk onto every screen for as long as the situation lasts.
        for label in STEPS[:-1]:
            step(page, label)
            expect_situation(page, path.situation)
        # Do and never lines of the situation on top are in view, not folded away.
        expect(page.locator("#do-lines li").first).to_be_visible()
        expect(page.locator("#never-lines li").first).to_be_visible()
        finish(page)
    over = {name: taps for name, taps in taps_by_path.items() if taps > 3}
    assert not over, f"more than three taps from Notify: {over}"
    assert not console.errors, console.errors


def test_each_fast_path_keeps_its_words_after_its_short_form_is_saved(
    server: KioskServer, new_context: Callable[..., Any], console: Console
) -> None:
    page = kiosk_page(new_context, server, console)

    tap_start(page)
    page.get_by_role("button", name="They say it's an emergency").click()
    expect_situation(page, "exigency")
    expect(page.get_by_role("heading", name="Emergency", exact=True)).to_be_visible()
    page.get_by_label("The reason they gave, word for word").fill("Said a person is in danger.")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Saved.", exact=True)).to_be_visible()
    expect_situation(page, "exigency")
    expect(page.get_by_label("The reason they gave, word for word")).to_have_value(
        "Said a person is in danger."
    )
    # Declared at once to levels 1 and 2: the desk is shown whom to call.
    expect(page.locator("#escalation")).to_be_visible(timeout=QUICK)
    finish(page)

    tap_start(page)
    page.get_by_role("button", name="They are going in").click()
    expect_situation(page, "entry_without_consent")
    expect(say(page)).to_have_text("I do not consent to this entry or search. I will not resist.")
    expect(page.get_by_role("heading", name="What happened")).to_be_visible()
    went_in = page.get_by_label("Went in at (HH:MM)")
    expect(went_in).to_have_value(re.compile(r"^\d{2}:\d{2}$"))
    page.get_by_label("Areas they went into").fill("Main hallway")
    page.get_by_role("button", name="Now: left").click()
    expect(page.get_by_label("Left at (HH:MM)")).to_have_value(re.compile(r"^\d{2}:\d{2}$"))
    expect(page.get_by_label("Areas they went into")).to_have_value("Main hallway")
    page.get_by_role("button", name="Save", exact=True).click()
    # Saving never lands on a screen that thanks them: the words stay.
    expect(page.get_by_role("heading", name="What happened")).to_be_visible()
    expect_situation(page, "entry_without_consent")
    finish(page)

    tap_start(page)
    page.get_by_role("link", name="They want a staff member or a parent").click()
    page.get_by_role("button", name="A parent, guardian or other adult").click()
    expect_situation(page, "parent_sought")
    for line in (
        "A staff member stays with the child, away from the encounter.",
        "Do not hand the child to the agents.",
        "The district office arranges the child's care with the contacts on file.",
    ):
        expect(page.locator("#now")).to_contain_text(line)
    page.get_by_label("Staff member who stays with the child").fill("Ms. Rivera")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("heading", name="The document")).to_be_visible()
    expect_situation(page, "parent_sought")
    step(page, "Request")
    expect(page.get_by_label("Staff member who stays with the child")).to_have_value("Ms. Rivera")
    finish(page)
    assert not console.errors, console.errors


def test_a_later_more_urgent_situation_takes_the_top_and_the_earlier_one_folds(
    server: KioskServer, new_context: Callable[..., Any], console: Console
) -> None:
    page = kiosk_page(new_context, server, console)
    tap_start(page)
    page.get_by_role("link", name="They are showing a document").click()
    page.get_by_role("button", name=re.compile("^Homeland Security warrant")).click()
    expect_situation(page, "doc:administrative_warrant")
    step(page, "Now")
    page.get_by_role("button", name="They are going in").click()
    expect_situation(page, "entry_without_consent")
    earlier = page.locator("#earlier details")
    expect(earlier).to_have_count(1)
    expect(earlier.locator("summary")).to_have_text(
        "Also recorded: Document: Administrative warrant"
    )
    expect(earlier.locator(".earlier-say")).to_be_hidden()  # folded
    earlier.locator("summary").click()
    expect(earlier.locator(".earlier-say")).to_be_visible()
    finish(page)


def jpeg_bytes() -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 180, 150)).save(output, "JPEG")
    return output.getvalue()


def test_no_add_button_drops_what_was_typed(
    server: KioskServer, new_context: Callable[..., Any], console: Console
) -> None:
    page = kiosk_page(new_context, server, console)
    tap_start(page)

    # Request: a name added after the purpose and the claimed consent keeps both.
    step(page, "Request")
    page.get_by_label("Purpose, in their own words").fill("Said it is a welfare check.")
    page.get_by_role("group", name="Do they say a parent or guardian agreed?").get_by_label(
        "Yes", exact=True
    ).check()
    page.get_by_label("What they said about that agreement").fill("Said the aunt agreed.")
    page.get_by_label("Name as the agent said it").fill("Ana Example")
    page.get_by_role("button", name="Add this name").click()
    expect(page.locator("#people .record-list")).to_contain_text("Ana Example", timeout=QUICK)
    expect(page.get_by_label("Purpose, in their own words")).to_have_value(
        "Said it is a welfare check."
    )
    expect(page.get_by_label("What they said about that agreement")).to_have_value(
        "Said the aunt agreed."
    )
    expect(page.get_by_label("Name as the agent said it")).to_have_value("")
    expect_situation(page, "consent_claimed")
    page.get_by_label("Purpose, in their own words").fill("Said it is a welfare check. Twice.")
    page.get_by_role("button", name="Remove Ana Example").click()
    expect(page.locator("#people")).not_to_contain_text("Ana Example (", timeout=QUICK)
    expect(page.get_by_label("Purpose, in their own words")).to_have_value(
        "Said it is a welfare check. Twice."
    )

    # Agents: the agent being typed is kept when the desk goes to edit another one.
    step(page, "Agents")
    page.get_by_label("Name", exact=True).fill("First Agent")
    page.get_by_role("button", name="Save and add another agent").click()
    page.get_by_label("Name", exact=True).fill("Second Agent")
    page.get_by_label("Shown only when asked").check()
    page.get_by_label("Hidden after being shown").check()
    page.get_by_role("button", name="Edit agent 1").click()
    expect(page.get_by_label("Name", exact=True)).to_have_value("First Agent")
    expect(page.locator(".record-list")).to_contain_text("Second Agent")
    page.get_by_role("button", name="Edit agent 2").click()
    expect(page.get_by_label("Shown only when asked")).to_be_checked()
    expect(page.get_by_label("Hidden after being shown")).to_be_checked()

    # Document: a photo, then a tap on a common document, keep the details typed.
    step(page, "Document")
    page.get_by_label("Case or file number").fill("CASE-4711")
    page.get_by_label("Photo", exact=True).set_input_files(
        {"name": "page1.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes()}
    )
    page.get_by_role("button", name="Add photo").click()
    expect(page.get_by_text("Photo added.")).to_be_visible(timeout=QUICK)
    expect(page.locator("#photo-list li")).to_have_count(1)
    expect(page.get_by_label("Case or file number")).to_have_value("CASE-4711")
    page.get_by_label("Dates on it").fill("1 March")
    page.get_by_role("button", name=re.compile("^Detainer")).click()
    expect_situation(page, "consent_claimed")  # more urgent; the document folds below it
    expect(page.locator("#earlier summary")).to_contain_text("Document: Detainer")
    expect(page.get_by_label("Case or file number")).to_have_value("CASE-4711")
    expect(page.get_by_label("Dates on it")).to_have_value("1 March")
    # Enter in a field saves; it never taps a common document.
    page.get_by_label("Case or file number").press("Enter")
    expect(page.get_by_role("heading", name="Emergency", exact=True)).to_be_visible(timeout=QUICK)
    step(page, "Document")
    expect(page.locator(".pick.picked")).to_have_count(1)
    expect(page.locator(".pick.picked")).to_contain_text("Detainer")
    finish(page)
    assert not console.errors, console.errors


def test_the_channel_and_place_are_corrected_after_the_tap(
    server: KioskServer, new_context: Callable[..., Any], console: Console
) -> None:
    page = kiosk_page(new_context, server, console)
    tap_start(page)
    expect_situation(page, "default")
    page.get_by_text("How and where: In person").click()
    page.get_by_role("group", name="How the request is made").get_by_label(
        "Phone", exact=True
    ).check()
    page.get_by_role("button", name="Save how and where").click()
    expect_situation(page, "phone")
    step(page, "Agents")
    expect(say(page)).to_contain_text("May I have your full name, agency, badge or ID number")
    step(page, "Now")
    page.get_by_text("How and where: Phone").click()
    page.get_by_role("group", name="How the request is made").get_by_label(
        "Our staff, reporting from elsewhere", exact=True
    ).check()
    page.get_by_role("group", name="Where").get_by_label("Bus or bus stop", exact=True).check()
    page.get_by_role("button", name="Save how and where").click()
    expect_situation(page, "offsite")
    expect(say(page)).to_contain_text("Tell our staff member")
    expect(
        page.get_by_text("How and where: Our staff, reporting from elsewhere, bus")
    ).to_be_visible()
    finish(page)
    assert not console.errors, console.errors


def test_the_cover_never_hides_whom_to_call(
    cover_server: KioskServer, new_context: Callable[..., Any], console: Console
) -> None:
    page = kiosk_page(new_context, cover_server, console)
    tap_start(page)
    cover = page.locator("#cover")
    expect(cover.locator("#cover-call")).to_be_hidden()
    # A declared emergency alerts level 2 at once: from then on the desk must be able to call.
    page.get_by_role("button", name="They say it's an emergency").click()
    expect(cover).to_be_visible(timeout=8_000)  # drawn after a few quiet seconds
    expect(cover).to_contain_text("Tap to continue")
    expect(cover.locator("#cover-call")).to_have_text(
        "Please call the district office: (555) 010-0111, (555) 010-0100"
    )
    # Nothing else of the encounter shows through.
    expect(cover).not_to_contain_text("emergency")
    cover.click()
    expect(cover).to_be_hidden()
    finish(page)
    assert not console.errors, console.errors


def test_started_by_mistake_needs_its_confirmation(
    server: KioskServer, new_context: Callable[..., Any], console: Console
) -> None:
    page = kiosk_page(new_context, server, console)
    tap_start(page)
    mistake = page.get_by_role("link", name="Started by mistake")
    expect(mistake).to_be_visible()
    step(page, "Agents")
    expect(page.get_by_role("link", name="Started by mistake")).to_have_count(0)
    step(page, "Now")
    mistake.click()
    expect(page.get_by_role("heading", name="Stand down this alert?")).to_be_visible()
    page.get_by_role("link", name="No, keep the alert").click()
    expect(say(page)).to_be_visible()  # still the encounter, nothing stood down
    expect(page.locator("#start-button")).to_have_count(0)
    mistake.click()
    page.get_by_role("button", name="Yes, it was started by mistake").click()
    expect(page.locator("#start-button")).to_be_visible(timeout=QUICK)
    expect(page.locator(".flash")).to_contain_text("Stood down as started by mistake.")
    assert not console.errors, console.errors


def test_the_new_desk_screens_pass_axe(
    server: KioskServer, new_context: Callable[..., Any], console: Console
) -> None:
    found: dict[str, list[str]] = {}
    page = kiosk_page(new_context, server, console)
    page.get_by_role("group", name="How is the request made?").get_by_label(
        "Our staff, reporting from elsewhere", exact=True
    ).check()
    expect(page.locator("#offsite-place")).to_be_visible()
    check_axe(page, "idle, reporting from elsewhere", found)
    tap_start(page)
    page.get_by_text("How and where:").click()
    check_axe(page, "start, how and where open", found)
    page.get_by_role("link", name="Started by mistake").click()
    check_axe(page, "stand-down confirmation", found)
    page.get_by_role("link", name="No, keep the alert").click()
    page.get_by_role("link", name="They want a staff member or a parent").click()
    check_axe(page, "staff or parent", found)
    page.get_by_role("button", name="A parent, guardian or other adult").click()
    check_axe(page, "request, parent sought", found)
    step(page, "Document")
    check_axe(page, "document picks", found)
    page.get_by_role("button", name=re.compile("^Court warrant to arrest")).click()
    page.locator("details#questions summary").click()
    check_axe(page, "document picked, questions open", found)
    page.locator("#earlier summary").first.click()
    check_axe(page, "earlier situation unfolded", found)
    step(page, "Now")
    page.get_by_role("button", name="They are going in").click()
    check_axe(page, "outcome, going in", found)
    page.locator("#cover-button").click()
    check_axe(page, "cover with numbers", found)
    assert not found, "serious or critical axe violations:\n" + "\n".join(
        f"{screen}: {problem}" for screen, problems in found.items() for problem in problems
    )
    assert not console.errors, console.errors
