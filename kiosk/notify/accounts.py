"""The email that carries an invitation or password-reset link: plain words, no record content."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from kiosk.models import OutboxMessage
from kiosk.notify.outbox import enqueue

SUBJECTS = {
    "invitation": "Set your password for the front-office system",
    "reset": "Set a new password for the front-office system",
}


def link_message(
    purpose: str, name: str, district: str, link: str, expires: str
) -> tuple[str, str]:
    """Subject and body: who it is for, the link, until when it works, and that it works once."""
    opening = (
        f"An administrator of {district} has given you an account on the front-office system."
        if purpose == "invitation"
        else f"An administrator of {district} has reset your password for the front-office "
        "system. Your previous password no longer works."
    )
    body = [
        f"Hello {name},",
        "",
        opening,
        "Open this link to set your password. It works once, until " + expires + ":",
        link,
        "",
        "If you did not expect this message, do not open the link; tell the district office.",
    ]
    return SUBJECTS.get(purpose, SUBJECTS["invitation"]), "\n".join(body)


def enqueue_link(
    session: Session,
    *,
    invitation_id: int,
    purpose: str,
    recipient: str,
    name: str,
    district: str,
    link: str,
    expires: str,
    now: datetime,
) -> OutboxMessage:
    """Put the link's email in the outbox, in the caller's transaction (one per link)."""
    subject, body = link_message(purpose, name, district, link, expires)
    return enqueue(
        session,
        key=f"account-link.{invitation_id}",
        encounter_id=None,
        contact_id=None,
        channel="email",
        kind=purpose,
        level=1,
        sequence=0,
        recipient=recipient,
        subject=subject,
        body=body,
        payload={"purpose": purpose},
        now=now,
    )
