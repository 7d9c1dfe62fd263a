"""What alerts say. School, local time, channel and categories only: never names or free text."""

from __future__ import annotations

from dataclasses import dataclass

CHANNEL_LABELS = {
    "in_person": "in person at the front desk",
    "phone": "by phone",
    "email": "by email",
    "letter": "by letter",
}

REQUEST_KIND_LABELS = {
    "student_info": "student information or records",
    "student_access": "access to a student",
    "staff": "information about or access to a staff member",
    "entry": "entry to non-public areas",
    "other": "other",
}


@dataclass(frozen=True)
class AlertFacts:
    """The only facts an alert may carry."""

    school: str
    local_time: str
    channel: str
    link: str
    reference: str
    school_phone: str = ""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def _footer(facts: AlertFacts) -> list[str]:
    lines = ["", "Open the record (sign-in required):", facts.link, ""]
    if facts.school_phone:
        lines.append(f"School office phone: {facts.school_phone}")
    lines.append(f"Reference: {facts.reference}")
    return lines


def alert(facts: AlertFacts) -> Rendered:
    channel = CHANNEL_LABELS.get(facts.channel, facts.channel)
    subject = f"Front-office alert: {facts.school}, {facts.local_time}"
    body = [
        f"A request about a student or staff member was made at {facts.school}, {channel}.",
        f"The front desk started the protocol at {facts.local_time}.",
        "",
        "The front desk is waiting for the Superintendent's Office.",
        "Please open the record and contact the desk.",
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
        f"The front-office alert from {facts.school} at {facts.local_time} was started by mistake.",
        "No action is needed. The record is kept.",
    ]
    return Rendered(subject, "\n".join(body + _footer(facts)))
