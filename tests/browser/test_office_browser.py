"""The district office in a real browser beside the kiosk: two browser contexts on one gunicorn.
The designee acknowledges from the emailed link, follows the live dashboard and the encounter
page, and guides the desk; the kiosk shows each of those without a reload."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from email.message import Message
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SCHOOL, Console, KioskServer
from tests.browser.test_kiosk_browser import (
    answer_triage,
    check_axe,
    kiosk_page,
    shoot,
    step,
    tap_start,
    text_of,
)
from tests.conftest import SmtpSink

DESIGNEE = "Dana Reyes"
DESIGNEE_EMAIL = "dana.reyes@demo-district.example"
DESIGNEE_PASSWORD = "demo-password"  # noqa: S105 - the printed demo credential
ACK_LINE = "Acknowledge (opens a page where you confirm):"
ACKNOWLEDGED = re.compile(rf"^Acknowledged by {DESIGNEE} at \d{{2}}:\d{{2}}:\d{{2}}$")
ON_MY_WAY = "I am on my way. Please ask them to wait in the lobby."
MESSAGE_NOTE = "A message from the district office has arrived."
CONFIRMED = "Confirmed by the district office: Administrative warrant"
AGENT_NAME = "Jordan Sample"
LIVE = 5_000  # ms: what another browser did, seen here through polling, without a reload
MAIL_SECONDS = 10.0
SLOW_MS = 3_000  # network latency longer than the office page's 2-second polling
PHONE = {"width": 390, "height": 844}
HOMELAND_WARRANT = re.compile(r"^Homeland Security warrant")


def watched_page(new_context: Callable[..., Any], console: Console) -> Page:
    """A new browser (own cookies, not enrolled, not signed in) whose console is watched."""
    page = new_context().new_page()
    console.watch(page)
    return page


def tap_with_channel(page: Page, channel: str) -> None:
    page.get_by_role("group", name="How is the request made?").get_by_label(
        channel, exact=True
    ).check()
    tap_start(page)


def mark_document(page: Page) -> None:
    """A marker that lives as long as this document: a reload or navigation clears it."""
    page.evaluate("window.__sameDocument = true")


def assert_same_document(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), f"{page.url} was reloaded"


def next_status(page: Page) -> dict[str, Any]:
    """What the kiosk knows after a status poll whose request was certainly sent after this
    call. A poll that finds nothing changed gets a short answer; then the full state is read
    the same way the page would have had it, with the kiosk's own cookies."""
    for _ in range(2):  # the first may have been on its way already
        with page.expect_response(lambda r: "/desk/status.json" in r.url, timeout=LIVE) as info:
            pass
    data: dict[str, Any] = info.value.json()
    if data.get("unchanged"):
        url = info.value.url.split("&since=")[0]
        full: dict[str, Any] = page.request.get(url).json()
        assert full["version"] == data["version"]
        return full
    return data


def wait_for_alert(sink: SmtpSink, since: int, server: KioskServer, channel: str) -> Message:
    """The designee's level-1 alert from this server about a request made by `channel`."""
    deadline = time.monotonic() + MAIL_SECONDS
    while time.monotonic() < deadline:
        with sink.lock:
            fresh = list(sink.messages[since:])
        for message in fresh:
            body = text_of(message)
            if (
                DESIGNEE_EMAIL in str(message["To"])
                and str(message["Subject"]).startswith(f"Front-office alert: {SCHOOL}")
                and f"made at {SCHOOL}, {channel}." in body
                and server.base_url in body
            ):
                return message
        time.sleep(0.05)
    with sink.lock:
        seen = [(str(m["To"]), str(m["Subject"])) for m in sink.messages[since:]]
    raise AssertionError(f"no alert to {DESIGNEE_EMAIL} within {MAIL_SECONDS}s; got {seen}")


def ack_link(message: Message) -> str:
    """The line after "Acknowledge (opens a page where you confirm):" in the email body."""
    lines = [line.strip() for line in text_of(message).splitlines()]
    assert ACK_LINE in lines, lines
    return lines[lines.index(ACK_LINE) + 1]


def sign_in(page: Page) -> None:
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(DESIGNEE_EMAIL)
    page.get_by_label("Password").fill(DESIGNEE_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def assert_no_axe_problems(found: dict[str, list[str]]) -> None:
    assert not found, "serious or critical axe violations:\n" + "\n".join(
        f"{screen}: {problem}" for screen, problems in found.items() for problem in problems
    )


def encounter_ids(page: Page, server: KioskServer) -> set[str]:
    """The open encounters the signed-in office user sees, through the page's own JSON."""
    response = page.request.get(f"{server.base_url}/office/encounters.json")
    assert response.ok, response.status
    return {e["id"] for e in response.json()["encounters"]}


@pytest.mark.browser
def test_the_designee_acknowledges_from_the_emailed_link_and_the_kiosk_sees_it(
    server: KioskServer,
    smtp_sink: SmtpSink,
    new_context: Callable[..., Any],
    console: Console,
) -> None:
    found: dict[str, list[str]] = {}
    kiosk = kiosk_page(new_context, server, console)
    designee = watched_page(new_context, console)

    with smtp_sink.lock:
        since = len(smtp_sink.messages)
    tap_with_channel(kiosk, "Letter")
    mark_document(kiosk)
    # Before the first window ends nobody has missed anything: no escalation box. (The box
    # after a missed window is covered by tests/test_escalation.py; a real wait is minutes.)
    expect(kiosk.locator("#escalation")).to_be_hidden()
    assert next_status(kiosk)["escalation"]["missed"] is False
    expect(kiosk.locator("#escalation")).to_be_hidden()
    expect(kiosk.locator("#ack-state")).to_be_hidden()

    link = ack_link(wait_for_alert(smtp_sink, since, server, "by letter"))
    assert link.startswith(f"{server.base_url}/ack/"), link

    # Opening the link (as a mail scanner would) changes nothing.
    response = designee.goto(link)
    assert response is not None and response.status == 200
    expect(
        designee.get_by_role("heading", name=f"Acknowledge the alert from {SCHOOL}")
    ).to_be_visible()
    expect(designee.locator("body")).to_contain_text(DESIGNEE)
    check_axe(designee, "acknowledgement confirmation", found)
    status = next_status(kiosk)
    assert status["ack"] is None, status
    expect(kiosk.locator("#ack-state")).to_be_hidden()
    expect(kiosk.locator("#ack-state")).to_have_text("")

    # Pressing "Acknowledge" does: the kiosk shows it without a reload.
    designee.get_by_role("button", name="Acknowledge").click()
    expect(designee.get_by_role("heading", name=re.compile(r"^Acknowledged at "))).to_be_visible()
    check_axe(designee, "acknowledged", found)
    ack_state = kiosk.locator("#ack-state")
    expect(ack_state).to_be_visible(timeout=LIVE)
    expect(ack_state).to_have_text(ACKNOWLEDGED, timeout=LIVE)
    assert_same_document(kiosk)
    expect(kiosk.locator("#escalation")).to_be_hidden()

    # The record behind the link needs a sign-in, then shows who acknowledged.
    designee.get_by_role("link", name="Open the record").click()
    sign_in(designee)
    expect(designee.locator('#summary [data-field="acknowledged"]')).to_have_text(
        re.compile(rf"^{DESIGNEE} at \d{{2}}:\d{{2}}:\d{{2}}$")
    )
    expect(designee.locator("#timeline")).to_contain_text("Acknowledged (email)")

    assert_no_axe_problems(found)
    assert not console.errors, console.errors


@pytest.mark.browser
def test_the_designee_follows_and_guides_the_desk_from_the_office_pages(
    server: KioskServer, new_context: Callable[..., Any], console: Console
) -> None:
    found: dict[str, list[str]] = {}
    office = watched_page(new_context, console)
    office.goto(f"{server.base_url}/login")
    check_axe(office, "sign in", found)
    sign_in(office)
    expect(office.get_by_role("heading", name="Open encounters")).to_be_visible()
    before = encounter_ids(office, server)

    # The live list: a row for the kiosk's encounter, then one more without a reload.
    kiosk = kiosk_page(new_context, server, console)
    tap_with_channel(kiosk, "Email")
    (first,) = encounter_ids(office, server) - before
    office.goto(f"{server.base_url}/office/")
    row = office.locator(f'#open-rows tr[data-id="{first}"]')
    expect(row).to_contain_text(SCHOOL)
    expect(row).to_contain_text("(email)")
    expect(row).to_contain_text("Not yet")
    check_axe(office, "open encounters", found)
    rows = office.locator("#open-rows tr")
    count = rows.count()
    mark_document(office)

    second_kiosk = kiosk_page(new_context, server, console)
    tap_with_channel(second_kiosk, "Phone")
    expect(rows).to_have_count(count + 1, timeout=LIVE)
    (second,) = encounter_ids(office, server) - before - {first}
    expect(office.locator(f'#open-rows tr[data-id="{second}"]')).to_contain_text("(phone)")
    expect(row).to_be_visible()
    assert_same_document(office)

    # The encounter page.
    row.get_by_role("link", name="Open record").click()
    expect(office.get_by_role("heading", name=re.compile(f"^{SCHOOL}: "))).to_be_visible()
    check_axe(office, "encounter", found)
    timeline = office.locator("#timeline")
    expect(timeline).to_contain_text("Protocol started at the desk")

    # A preset message: the kiosk says one has arrived, and shows it only on a tap.
    office.get_by_role("group", name="Message to the desk").get_by_label(
        ON_MY_WAY, exact=True
    ).check()
    office.get_by_role("button", name="Send to the desk").click()
    expect(office.get_by_text("Message sent to the desk.")).to_be_visible()
    mark_document(office)
    mark_document(kiosk)
    note = kiosk.locator("#message-note")
    expect(note).to_be_visible(timeout=LIVE)
    expect(note).to_contain_text(MESSAGE_NOTE)
    assert_same_document(kiosk)
    expect(kiosk.get_by_text(ON_MY_WAY)).to_have_count(0)
    assert ON_MY_WAY not in kiosk.content()
    note.get_by_role("button", name="Show the message").click()
    expect(kiosk.locator(".desk-message-text")).to_have_text(ON_MY_WAY)
    expect(kiosk.get_by_text(ON_MY_WAY)).to_be_visible()
    expect(timeline).to_contain_text("The desk opened the message", timeout=LIVE)
    expect(office.locator("#record")).to_contain_text("opened at the desk", timeout=LIVE)
    assert_same_document(office)

    # The document: "not sure" at the desk, confirmed by the office, followed by the script.
    step(kiosk, "Document")
    answer_triage(kiosk, {"shown": "Not sure"})
    say = kiosk.locator("#say-line")
    expect(say).to_have_attribute("data-situation", "doc:unsure")
    unsure_line = say.inner_text()
    unsure_meaning = kiosk.locator("#impression-meaning").inner_text()
    expect(kiosk.locator("#impression-label")).not_to_have_text(CONFIRMED)
    # The top of the office page follows: the desk's words and the first impression.
    expect(office.locator("#moment-say")).to_have_text(unsure_line, timeout=LIVE)
    expect(office.locator('#summary [data-field="document"]')).to_contain_text(
        "Not sure yet", timeout=LIVE
    )
    mark_document(kiosk)
    office.get_by_label("Confirmed document type").select_option(label="Administrative warrant")
    office.get_by_role("button", name="Confirm the document type").click()
    expect(office.get_by_text("Document type confirmed.")).to_be_visible()
    expect(kiosk.locator("#impression-label")).to_have_text(CONFIRMED, timeout=LIVE)
    expect(say).to_have_attribute("data-situation", "doc:administrative_warrant", timeout=LIVE)
    expect(say).not_to_have_text(unsure_line)
    # What the first impression meant is not left standing beside the confirmed type.
    expect(kiosk.locator("#impression-meaning", has_text=unsure_meaning)).to_be_hidden()
    assert_same_document(kiosk)

    # The timeline and the record follow the desk without a reload.
    mark_document(office)
    step(kiosk, "Agents")
    kiosk.get_by_label("Name", exact=True).fill(AGENT_NAME)
    kiosk.get_by_role("button", name="Save and continue").click()
    expect(kiosk.get_by_text("Agent 1 saved.")).to_be_visible()
    expect(timeline).to_contain_text("Agent added", timeout=LIVE)
    expect(office.locator("#record")).to_contain_text(AGENT_NAME, timeout=LIVE)
    assert_same_document(office)
    check_axe(office, "encounter, updated live", found)
    expect(timeline.locator("li", has_text="Agent added")).to_have_count(1)

    # On a slow network (each request longer than the polling interval) no line is repeated.
    slow = office.context.new_cdp_session(office)
    slow.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": SLOW_MS, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    step(kiosk, "Emergency")
    kiosk.get_by_role("group", name="Did an agent say it is an emergency?").get_by_label(
        "No", exact=True
    ).check()
    kiosk.get_by_role("button", name="Save", exact=True).click()
    expect(kiosk.get_by_role("heading", name="What happened")).to_be_visible()
    recorded = timeline.locator("li", has_text="Emergency question recorded")
    expect(recorded).to_have_count(1, timeout=3 * SLOW_MS)
    office.wait_for_timeout(1.5 * SLOW_MS)  # the polls that were on their way have landed
    expect(recorded).to_have_count(1)
    expect(timeline.locator("li", has_text="Agent added")).to_have_count(1)
    slow.detach()
    assert_same_document(office)

    assert_no_axe_problems(found)
    assert not console.errors, console.errors


def document_jpeg() -> bytes:
    """A small landscape photo of a "document": a white page with dark lines."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (480, 320), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((12, 12, 467, 307), outline="black", width=3)
    for top in range(48, 290, 24):
        draw.line((32, top, 440, top), fill="#333333", width=4)
    output = io.BytesIO()
    image.save(output, "JPEG", quality=85)
    return output.getvalue()


def in_viewport(page: Page, selector: str) -> dict[str, float]:
    """The element's box, asserted to lie within the phone's screen as it first opens."""
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not rendered"
    height = PHONE["height"]
    assert box["y"] >= 0 and box["y"] + box["height"] <= height, (selector, box)
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (selector, box)
    return box


@pytest.mark.browser
def test_a_designee_on_a_phone_sees_the_moment_and_the_document_photo_first(
    server: KioskServer, new_context: Callable[..., Any], console: Console
) -> None:
    found: dict[str, list[str]] = {}
    office = new_context(viewport=PHONE).new_page()
    console.watch(office)
    office.goto(f"{server.base_url}/login")
    sign_in(office)
    expect(office.get_by_role("heading", name="Open encounters")).to_be_visible()
    before = encounter_ids(office, server)

    # The desk: the tap, a photo of the document, then a common document by what it shows.
    kiosk = kiosk_page(new_context, server, console)
    tap_start(kiosk)
    (encounter,) = encounter_ids(office, server) - before
    step(kiosk, "Document")
    kiosk.get_by_label("Photo", exact=True).set_input_files(
        files=[{"name": "document.jpg", "mimeType": "image/jpeg", "buffer": document_jpeg()}]
    )
    kiosk.get_by_role("button", name="Add photo").click()
    expect(kiosk.get_by_text("Photo added.")).to_be_visible()
    kiosk.get_by_role("button", name=HOMELAND_WARRANT).click()
    expect(kiosk.locator("#say-line")).to_have_attribute(
        "data-situation", "doc:administrative_warrant"
    )
    # What the desk's "Now" panel says on its start screen.
    kiosk.goto(f"{server.base_url}/desk/")
    desk_say = kiosk.locator("#say-line").inner_text().strip()
    desk_label = kiosk.locator("#now-label").inner_text().strip()

    # The designee opens the record on the phone: the moment and the photo, with no scrolling.
    office.goto(f"{server.base_url}/office/encounters/{encounter}")
    expect(office.get_by_role("heading", name=re.compile(f"^{SCHOOL}: "))).to_be_visible()
    expect(office.locator("#moment-say")).to_have_text(desk_say)
    expect(office.locator("#moment-situation")).to_have_text(desk_label)
    expect(office.locator('#summary [data-field="document"]')).to_contain_text(
        "Administrative warrant"
    )
    photo = office.locator("#moment-photo img")
    expect(photo).to_be_visible()
    office.wait_for_function(
        "() => { const img = document.querySelector('#moment-photo img');"
        " return img !== null && img.complete && img.naturalWidth > 0; }"
    )
    assert photo.evaluate("img => img.naturalWidth") > 0
    shoot(office, "office-encounter-phone")
    assert office.evaluate("window.scrollY") == 0
    in_viewport(office, "#moment-say")
    in_viewport(office, "#moment-situation")
    box = in_viewport(office, "#moment-photo img")
    assert box["width"] >= PHONE["width"] - 40, box  # the phone's width, or close to it
    # The thumbnails further down render too: no empty boxes and no list markers.
    thumb = office.locator("#photos .photo-thumb").first
    thumb.scroll_into_view_if_needed()
    office.wait_for_function(
        "() => { const img = document.querySelector('#photos .photo-thumb');"
        " return img !== null && img.complete && img.naturalWidth > 0; }"
    )
    assert thumb.evaluate("img => img.getBoundingClientRect().height") > 0
    marker = office.locator("#photos .photo-grid > li").first.evaluate(
        "li => getComputedStyle(li).listStyleType"
    )
    assert marker == "none", marker
    check_axe(office, "encounter on a phone", found)

    # A second photo: the list below shows it without a reload; the first stays on top.
    mark_document(office)
    first = office.locator("#moment-photo").get_attribute("data-photo")
    step(kiosk, "Document")
    kiosk.get_by_label("Photo", exact=True).set_input_files(
        files=[{"name": "second.jpg", "mimeType": "image/jpeg", "buffer": document_jpeg()}]
    )
    kiosk.get_by_role("button", name="Add photo").click()
    expect(kiosk.get_by_text("Photo added.")).to_be_visible()
    expect(office.locator("#photos .photo-thumb")).to_have_count(2, timeout=LIVE)
    expect(office.locator('#summary [data-field="last_desk"]')).to_contain_text(
        "Photo added", timeout=LIVE
    )
    assert office.locator("#moment-photo").get_attribute("data-photo") == first
    assert_same_document(office)

    assert_no_axe_problems(found)
    assert not console.errors, console.errors
