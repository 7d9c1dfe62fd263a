"""Shape one rendered message for a contact's channel: email, webhook (three formats) or SMS.

Everything here is rendered once, at enqueue, and sent verbatim on every try. Only the
facts of AlertFacts go out: school, local time, channel, categories and links.
"""

from __future__ import annotations

from typing import Any

from kiosk.models import Contact
from kiosk.notify.messages import CHANNEL_LABELS, AlertFacts, Rendered
from kiosk.notify.webhook import FORMATS, canonical

SMS_MAX_CHARS = 320

KIND_WORDS = {
    "alert": "Front-office alert",
    "escalation": "Escalated front-office alert",
    "realert": "Reminder: front-office alert not acknowledged",
    "exigency": "Emergency declared: front-office alert",
    "followup": "Update on front-office alert",
    "standdown": "Stand down: front-office alert started by mistake",
    # Plain hyphen: an SMS stays in the GSM alphabet.
    "test": "TEST ALERT - no action at the school",
}


def for_channel(
    contact: Contact, kind: str, level: int, rendered: Rendered, facts: AlertFacts
) -> tuple[str, str, dict[str, Any]]:
    """Return (subject, body, payload) as they will be sent, verbatim, on every try."""
    if contact.channel == "webhook":
        return webhook(contact.webhook_format, kind, level, rendered, facts)
    if contact.channel == "sms":
        return rendered.subject, sms_text(kind, level, facts), _meta(kind, level, facts)
    return rendered.subject, rendered.body, _meta(kind, level, facts)


def _meta(kind: str, level: int, facts: AlertFacts) -> dict[str, Any]:
    return {"kind": kind, "level": level, "school": facts.school}


def webhook(
    fmt: str | None, kind: str, level: int, rendered: Rendered, facts: AlertFacts
) -> tuple[str, str, dict[str, Any]]:
    """Render the JSON document for a webhook; an unknown format falls back to generic."""
    fmt = fmt if fmt in FORMATS else "generic"
    if fmt == "slack":
        document = slack(rendered, facts)
    elif fmt == "teams":
        document = teams(rendered, facts)
    else:
        document = generic(kind, level, rendered, facts)
    return rendered.subject, canonical(document), {**_meta(kind, level, facts), "format": fmt}


def generic(kind: str, level: int, rendered: Rendered, facts: AlertFacts) -> dict[str, Any]:
    return {
        # Set from the row's idempotency key when sent (see webhook.wire_body).
        "delivery_id": None,
        "kind": kind,
        "level": level,
        "title": rendered.subject,
        "school": facts.school,
        "local_time": facts.local_time,
        "channel": facts.channel,
        "place": facts.place or None,
        "link": facts.link or None,
        "ack_link": facts.ack_link or None,
        "reference": facts.reference,
    }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(rendered: Rendered, facts: AlertFacts) -> dict[str, Any]:
    """A Slack incoming-webhook message: one text with links."""
    lines = [
        f"*{_slack_escape(rendered.subject)}*",
        _slack_escape(f"{facts.school}, {_channel(facts)}, {facts.local_time}"),
    ]
    if facts.ack_link:
        lines.append(f"<{facts.ack_link}|Acknowledge>")
    if facts.link:
        lines.append(f"<{facts.link}|Open the record> (sign-in required)")
    lines.append(f"Reference: {facts.reference}")
    return {"text": "\n".join(lines)}


def teams(rendered: Rendered, facts: AlertFacts) -> dict[str, Any]:
    """A Microsoft Teams connector MessageCard; its text alone also reads well."""
    actions = []
    if facts.ack_link:
        actions.append(_open_uri("Acknowledge", facts.ack_link))
    if facts.link:
        actions.append(_open_uri("Open the record", facts.link))
    text = f"{facts.school}, {_channel(facts)}, {facts.local_time}. Reference: {facts.reference}"
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": rendered.subject,
        "themeColor": "B00020",
        "title": rendered.subject,
        "text": text,
        "potentialAction": actions,
    }


def _open_uri(name: str, uri: str) -> dict[str, Any]:
    return {"@type": "OpenUri", "name": name, "targets": [{"os": "default", "uri": uri}]}


def _channel(facts: AlertFacts) -> str:
    words = CHANNEL_LABELS.get(facts.channel, facts.channel)
    return f"{words}, at {facts.where}" if facts.where else words


def sms_text(kind: str, level: int, facts: AlertFacts) -> str:
    """A short text (at most SMS_MAX_CHARS) that always keeps its link whole."""
    words = KIND_WORDS.get(kind, "Front-office alert")
    if kind == "escalation":
        words = f"{words} (level {level})"
    tail = f" Acknowledge: {facts.ack_link}" if facts.ack_link else f" Record: {facts.link}"
    head = f"{words}: {facts.school}, {_channel(facts)}, {facts.local_time}."
    room = SMS_MAX_CHARS - len(tail)
    if len(head) > room:
        head = head[: max(room - 3, 0)].rstrip() + "..."
    return (head + tail)[:SMS_MAX_CHARS]
