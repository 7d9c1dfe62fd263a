"""Render a message about an encounter for each contact and put it in the outbox.

Who the contacts are, and which message they get, is decided by the domain
(kiosk/protocol/routing.py); this module only renders and enqueues.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from kiosk.localtime import long_time
from kiosk.models import Contact, Encounter, OutboxMessage, School, TestAlert
from kiosk.notify import formats, messages
from kiosk.notify.links import Links
from kiosk.notify.outbox import ALERT_KINDS, enqueue, idempotency_key


def alert_facts(
    encounter: Encounter, school: School, links: Links, contact: Contact | None = None
) -> messages.AlertFacts:
    return messages.AlertFacts(
        school=school.name,
        local_time=long_time(encounter.started_at, school.timezone),
        channel=encounter.channel,
        place=encounter.place or "",
        link=links.encounter(encounter.public_id),
        reference=encounter.public_id,
        school_phone=school.office_phone,
        ack_link=links.acknowledge(encounter.public_id, contact.id) if contact else "",
    )


def enqueue_for(
    session: Session,
    encounter: Encounter,
    contacts: Iterable[Contact],
    kind: str,
    level: int,
    links: Links,
    now: datetime,
    render: messages.Renderer,
    sequence: int = 0,
    new_encounter: bool = False,
) -> list[OutboxMessage]:
    """Render per contact (each gets its own acknowledgement link) and enqueue."""
    rows = []
    school = encounter.school
    for contact in contacts:
        facts = alert_facts(encounter, school, links, contact if kind in ALERT_KINDS else None)
        subject, body, payload = formats.for_channel(contact, kind, level, render(facts), facts)
        key = idempotency_key(
            encounter.public_id, contact.id, contact.channel, kind, level, sequence
        )
        rows.append(
            enqueue(
                session,
                key=key,
                encounter_id=encounter.id,
                contact_id=contact.id,
                channel=contact.channel,
                kind=kind,
                level=level,
                sequence=sequence,
                recipient=contact.address,
                subject=subject,
                body=body,
                payload=payload,
                now=now,
                new_encounter=new_encounter,
            )
        )
    return rows


def enqueue_test(
    session: Session,
    test: TestAlert,
    school: School,
    contacts: Iterable[Contact],
    links: Links,
    now: datetime,
) -> list[OutboxMessage]:
    """Render the test alert per contact, through each contact's own channel and format, and
    enqueue it like an alert: the deliverer cannot tell them apart, only the words can."""
    rows = []
    for contact in contacts:
        facts = messages.AlertFacts(
            school=school.name,
            local_time=long_time(now, school.timezone),
            channel="test alert",
            # No record to open: a test is not a record.
            link="",
            reference=test.public_id,
            school_phone=school.office_phone,
            ack_link=links.acknowledge_test(test.public_id, contact.id),
        )
        subject, body, payload = formats.for_channel(
            contact, "test", 1, messages.test_alert(facts), facts
        )
        rows.append(
            enqueue(
                session,
                key=idempotency_key(test.public_id, contact.id, contact.channel, "test", 1, 0),
                encounter_id=None,
                test_alert_id=test.id,
                contact_id=contact.id,
                channel=contact.channel,
                kind="test",
                level=1,
                sequence=0,
                recipient=contact.address,
                subject=subject,
                body=body,
                payload=payload,
                now=now,
                new_encounter=True,
            )
        )
    return rows
