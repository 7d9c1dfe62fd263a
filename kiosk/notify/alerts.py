"""Enqueue the alert, its follow-up and a stand-down for the contacts of a school."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.models import Contact, Encounter, OutboxMessage, School
from kiosk.notify import messages
from kiosk.notify.localtime import long_time
from kiosk.notify.outbox import enqueue, idempotency_key


def encounter_link(base_url: str, encounter: Encounter) -> str:
    return f"{base_url}/office/encounters/{encounter.public_id}"


def alert_facts(encounter: Encounter, school: School, base_url: str) -> messages.AlertFacts:
    return messages.AlertFacts(
        school=school.name,
        local_time=long_time(encounter.started_at, school.timezone),
        channel=encounter.channel,
        link=encounter_link(base_url, encounter),
        reference=encounter.public_id,
        school_phone=school.office_phone,
    )


def contacts_for(session: Session, school_id: int, level: int) -> list[Contact]:
    return list(
        session.scalars(
            select(Contact)
            .where(Contact.school_id == school_id, Contact.level == level, Contact.active)
            .order_by(Contact.id)
        )
    )


def _enqueue_for(
    session: Session,
    encounter: Encounter,
    contacts: Iterable[Contact],
    kind: str,
    level: int,
    rendered: messages.Rendered,
    now: datetime,
) -> list[OutboxMessage]:
    rows = []
    for contact in contacts:
        key = idempotency_key(encounter.public_id, contact.id, contact.channel, kind, level, 0)
        rows.append(
            enqueue(
                session,
                key=key,
                encounter_id=encounter.id,
                contact_id=contact.id,
                channel=contact.channel,
                kind=kind,
                level=level,
                sequence=0,
                recipient=contact.address,
                subject=rendered.subject,
                body=rendered.body,
                payload={"kind": kind, "school": encounter.school.name, "level": level},
                now=now,
            )
        )
    return rows


def enqueue_alert(
    session: Session, encounter: Encounter, base_url: str, now: datetime, level: int = 1
) -> list[OutboxMessage]:
    """Alert every active contact of the encounter's school at one level."""
    facts = alert_facts(encounter, encounter.school, base_url)
    contacts = contacts_for(session, encounter.school_id, level)
    return _enqueue_for(session, encounter, contacts, "alert", level, messages.alert(facts), now)


def alerted_contacts(session: Session, encounter: Encounter) -> list[Contact]:
    """Return every contact that an alert for this encounter was addressed to."""
    ids = session.scalars(
        select(OutboxMessage.contact_id)
        .where(OutboxMessage.encounter_id == encounter.id, OutboxMessage.kind == "alert")
        .distinct()
    ).all()
    if not ids:
        return []
    return list(session.scalars(select(Contact).where(Contact.id.in_(ids)).order_by(Contact.id)))


def enqueue_followup(
    session: Session,
    encounter: Encounter,
    base_url: str,
    now: datetime,
    request_kinds: list[str],
    document: str,
    exigency: str,
) -> list[OutboxMessage]:
    """Send the one follow-up (categories only) to everyone already alerted."""
    facts = alert_facts(encounter, encounter.school, base_url)
    rendered = messages.followup(facts, request_kinds, document, exigency)
    contacts = alerted_contacts(session, encounter)
    return _enqueue_for(session, encounter, contacts, "followup", 0, rendered, now)


def enqueue_stand_down(
    session: Session, encounter: Encounter, base_url: str, now: datetime
) -> list[OutboxMessage]:
    facts = alert_facts(encounter, encounter.school, base_url)
    contacts = alerted_contacts(session, encounter)
    return _enqueue_for(
        session, encounter, contacts, "standdown", 0, messages.stand_down(facts), now
    )
