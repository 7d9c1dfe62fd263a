"""The printable incident report of one encounter: what a reviewer files or hands to
counsel. It reads what the record page already gathers, and each view is audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import render_template
from sqlalchemy import select

from kiosk import webdb
from kiosk.auth.policy import may, requires
from kiosk.models import Acknowledgement, District, Encounter, OutboxMessage
from kiosk.office.common import audit_view, find, office_user
from kiosk.office.record import page_context
from kiosk.review.blueprint import bp


@bp.get("/encounters/<public_id>/report", endpoint="report")
@requires("encounter.read")
def report(public_id: str) -> Any:
    """The same access as the record page (404 elsewhere, 403 for a role that may not read),
    and, since it shows names, the same audit entry before the page is rendered."""
    record = find(public_id)
    audit_view("encounter.report", f"encounter:{record.public_id}")
    context = page_context(record)
    district = webdb.session().scalar(select(District).limit(1))
    return render_template(
        "review/report.html",
        **context,
        district=district.name if district is not None else "",
        times=times(record),
        told=told(context["messages"], context["contacts"], context["acks"]),
        may_hold=may(office_user(), "retention.hold", record.school_id),
    )


def times(encounter: Encounter) -> list[tuple[str, datetime | None]]:
    """The four moments a reader looks for first, in order; None when it has not happened."""
    return [
        ("Started at the desk", encounter.started_at),
        ("District office alerted", encounter.first_alert_sent_at),
        ("First acknowledged", encounter.first_acknowledged_at),
        ("Resolved", encounter.resolved_at),
    ]


def told(
    messages: list[OutboxMessage],
    contacts: dict[int, Any],
    acks: list[tuple[Acknowledgement, str]],
) -> list[dict[str, Any]]:
    """Each message to a contact with the contact's first acknowledgement beside it, so the
    report says who was told, when, and when and as whom they answered."""
    first_ack: dict[int, tuple[datetime, str]] = {}
    for ack, name in acks:
        if ack.contact_id is not None:
            first_ack.setdefault(ack.contact_id, (ack.at, name))
    rows = []
    for message in messages:
        contact = contacts.get(message.contact_id) if message.contact_id is not None else None
        answer = first_ack.get(message.contact_id) if message.contact_id is not None else None
        rows.append(
            {
                "name": contact.name if contact is not None else "",
                "channel": message.channel,
                "kind": message.kind,
                "level": message.level,
                "status": message.status,
                "sent_at": message.sent_at,
                "acknowledged_at": answer[0] if answer else None,
                "acknowledged_by": answer[1] if answer else "",
            }
        )
    return rows
