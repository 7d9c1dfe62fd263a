"""What alerts say. School, local time, channel and categories only: never names or free text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kiosk import vocabulary

CHANNEL_LABELS = vocabulary.CHANNEL_PHRASES
PLACE_LABELS = vocabulary.PLACE_PHRASES
REQUEST_KIND_LABELS = vocabulary.REQUEST_KIND_PHRASES


@dataclass(frozen=True)
class AlertFacts:
    """The only facts an alert may carry."""

    school: str
    local_time: str
    channel: str
    link: str
    reference: str
    school_phone: str = ""
    ack_link: str = ""
    place: str = ""

    @property
    def where(self) -> str:
        """Return where it happens, in words, or "" when no place was recorded."""
        return PLACE_LABELS.get(self.place, "") if self.place != "phone" else ""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


Renderer = Callable[[AlertFacts], Rendered]

STAND_DOWN_TEXT = (
    "Stood down at the desk as started by mistake. If you did not expect this, call the school."
)


def _footer(facts: AlertFacts) -> list[str]:
    lines = []
    if facts.ack_link:
        lines += ["", "Acknowledge (opens a page where you confirm):", facts.ack_link]
    if facts.link:
        lines += ["", "Open the record (sign-in required):", facts.link]
    lines.append("")
    if facts.school_phone:
        lines.append(f"School office phone: {facts.school_phone}")
    lines.append(f"Reference: {facts.reference}")
    return lines


def alert(facts: AlertFacts, level: int = 1, reminder: int = 0, exigency: bool = False) -> Rendered:
    """The alert itself; escalations and reminders say that nobody has acknowledged yet."""
    channel = CHANNEL_LABELS.get(facts.channel, facts.channel)
    prefix = "Front-office alert"
    if reminder:
        prefix = f"Reminder {reminder}: front-office alert not acknowledged"
    elif level > 1:
        prefix = f"Escalated (level {level}): front-office alert"
    if exigency:
        prefix = f"Emergency declared: {prefix[0].lower()}{prefix[1:]}"
    body = [
        f"A request about a student or staff member was made at {facts.school}, {channel}.",
        f"The front desk started the protocol at {facts.local_time}.",
    ]
    if facts.where:
        body.append(f"Where: {facts.where}.")
    if exigency:
        body.append("The agent has declared an emergency.")
    if level > 1 or reminder:
        body.append("Nobody has acknowledged this alert yet.")
    body += [
        "",
        "The front desk is waiting for the Superintendent's Office.",
        "Please acknowledge, then contact the desk.",
    ]
    subject = f"{prefix}: {facts.school}, {facts.local_time}"
    return Rendered(subject, "\n".join(body + _footer(facts)))


TEST_WORDS = "TEST ALERT — no action at the school"


def test_alert(facts: AlertFacts) -> Rendered:
    """A test of the routing: it says so first, and asks for an acknowledgement like a real
    alert does, so the administrator learns that the link and the people work."""
    subject = f"{TEST_WORDS}: {facts.school}, {facts.local_time}"
    body = [
        f"{TEST_WORDS}.",
        "",
        f"This is a test of the alerts for {facts.school}, sent by the district's "
        "administration. Nothing is happening at the school and nobody there is waiting.",
        "Please acknowledge it as you would a real alert: the administration sees who "
        "acknowledged and how long it took.",
    ]
    return Rendered(subject, "\n".join(body + _footer(facts)))


def followup(facts: AlertFacts, request_kinds: list[str], document: str, exigency: str) -> Rendered:
    kinds = ", ".join(REQUEST_KIND_LABELS.get(k, k) for k in request_kinds) or "not recorded yet"
    subject = f"Update: front-office alert at {facts.school}, {facts.local_time}"
    body = [
        f"The front desk at {facts.school} has recorded the document step.",
        "",
        f"Request: {kinds}",
        f"Document (desk's first impression, to be confirmed): {document}",
        f"Emergency declared by the agent: {exigency}",
    ]
    return Rendered(subject, "\n".join(body + _footer(facts)))


def stand_down(facts: AlertFacts) -> Rendered:
    subject = f"Stand down: front-office alert at {facts.school}, {facts.local_time}"
    body = [
        STAND_DOWN_TEXT,
        f"The alert was from {facts.school} at {facts.local_time}. The record is kept.",
    ]
    return Rendered(subject, "\n".join(body + _footer(facts)))
