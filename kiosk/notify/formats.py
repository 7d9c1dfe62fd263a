"""Shape one rendered message for a contact's channel (email today; webhook and SMS later)."""

from __future__ import annotations

from typing import Any

from kiosk.models import Contact
from kiosk.notify.messages import AlertFacts, Rendered


def for_channel(
    contact: Contact, kind: str, level: int, rendered: Rendered, facts: AlertFacts
) -> tuple[str, str, dict[str, Any]]:
    """Return (subject, body, payload) as they will be sent, verbatim, on every try."""
    payload = {"kind": kind, "level": level, "school": facts.school}
    return rendered.subject, rendered.body, payload
