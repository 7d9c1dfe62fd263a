"""Who is alerted, at which level: routing by level, school hours and off-site place.

Each enqueue_* function decides the recipients and what they are told; rendering and the
outbox rows are notify's (kiosk/notify/alerts.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.localtime import is_school_hours
from kiosk.models import Contact, Encounter, OutboxMessage, School
from kiosk.notify import messages
from kiosk.notify.alerts import enqueue_for
from kiosk.notify.links import Links
from kiosk.notify.outbox import ALERT_KINDS


def contacts_for(session: Session, school: School, level: int, now: datetime) -> list[Contact]:
    """Return who is alerted at a level; outside school hours after-hours contacts take level 1.

    Contacts routed to off-site places are alerted for those places only (place_contacts).
    """
    active = select(Contact).where(
        Contact.school_id == school.id, Contact.active, Contact.places == ""
    )
    if level == 1 and not is_school_hours(school, now):
        after_hours = list(session.scalars(active.where(Contact.after_hours).order_by(Contact.id)))
        if after_hours:
            return after_hours
    return list(
        session.scalars(
            active.where(Contact.level == level, Contact.after_hours.is_(False)).order_by(
                Contact.id
            )
        )
    )


def place_contacts(session: Session, school: School, place: str | None) -> list[Contact]:
    """Return the contacts the school routes this place to (transportation for a bus, say)."""
    if not place:
        return []
    routed = session.scalars(
        select(Contact)
        .where(Contact.school_id == school.id, Contact.active, Contact.places != "")
        .order_by(Contact.id)
    )
    return [c for c in routed if place in c.places.split(",")]


def alerted_contacts(session: Session, encounter: Encounter) -> list[Contact]:
    """Return every contact that an alert for this encounter was addressed to."""
    ids = session.scalars(
        select(OutboxMessage.contact_id)
        .where(OutboxMessage.encounter_id == encounter.id, OutboxMessage.kind.in_(ALERT_KINDS))
        .distinct()
    ).all()
    if not ids:
        return []
    return list(session.scalars(select(Contact).where(Contact.id.in_(ids)).order_by(Contact.id)))


def enqueue_alert(
    session: Session,
    encounter: Encounter,
    links: Links,
    now: datetime,
    level: int = 1,
    new_encounter: bool = False,
) -> list[OutboxMessage]:
    """Alert every active contact of the encounter's school at one level.

    Level 1 also alerts the contacts routed to the encounter's place.
    """
    contacts = contacts_for(session, encounter.school, level, now)
    if level == 1:
        contacts += [
            c
            for c in place_contacts(session, encounter.school, encounter.place)
            if c not in contacts
        ]
    kind = "alert" if level == 1 else "escalation"
    return enqueue_for(
        session,
        encounter,
        contacts,
        kind,
        level,
        links,
        now,
        lambda facts: messages.alert(facts, level=level, exigency=bool(encounter.exigency)),
        new_encounter=new_encounter,
    )


def enqueue_place_alert(
    session: Session, encounter: Encounter, links: Links, now: datetime
) -> list[OutboxMessage]:
    """Alert the contacts routed to the encounter's place who have not been alerted yet."""
    alerted = {c.id for c in alerted_contacts(session, encounter)}
    contacts = [
        c for c in place_contacts(session, encounter.school, encounter.place) if c.id not in alerted
    ]
    return enqueue_for(
        session,
        encounter,
        contacts,
        "alert",
        1,
        links,
        now,
        lambda facts: messages.alert(facts, level=1, exigency=bool(encounter.exigency)),
    )


def enqueue_exigency(
    session: Session, encounter: Encounter, links: Links, now: datetime
) -> list[OutboxMessage]:
    """A declared emergency goes to levels 1 and 2 at once."""
    contacts = {c.id: c for c in alerted_contacts(session, encounter)}
    for level in (1, 2):
        for contact in contacts_for(session, encounter.school, level, now):
            contacts.setdefault(contact.id, contact)
    return enqueue_for(
        session,
        encounter,
        contacts.values(),
        "exigency",
        0,
        links,
        now,
        lambda facts: messages.alert(facts, exigency=True),
    )


def enqueue_reminder(
    session: Session, encounter: Encounter, links: Links, now: datetime, number: int
) -> list[OutboxMessage]:
    """Alert everyone alerted so far again: nobody has acknowledged after the last level."""
    return enqueue_for(
        session,
        encounter,
        alerted_contacts(session, encounter),
        "realert",
        encounter.escalation_level,
        links,
        now,
        lambda facts: messages.alert(facts, reminder=number),
        sequence=number,
    )


def enqueue_followup(
    session: Session,
    encounter: Encounter,
    links: Links,
    now: datetime,
    request_kinds: list[str],
    document: str,
    exigency: str,
) -> list[OutboxMessage]:
    """Send the one follow-up (categories only) to everyone already alerted."""
    return enqueue_for(
        session,
        encounter,
        alerted_contacts(session, encounter),
        "followup",
        0,
        links,
        now,
        lambda facts: messages.followup(facts, request_kinds, document, exigency),
    )


def enqueue_stand_down(
    session: Session, encounter: Encounter, links: Links, now: datetime
) -> list[OutboxMessage]:
    return enqueue_for(
        session,
        encounter,
        alerted_contacts(session, encounter),
        "standdown",
        0,
        links,
        now,
        messages.stand_down,
    )
