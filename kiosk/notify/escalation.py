"""Escalate alerts nobody acknowledged: level 2, level 3, then reminders until someone does.

The schedule lives on the encounter (next_escalation_at), so a restart loses nothing: any
process that runs escalate_due() picks up whatever is due.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kiosk.db import writing
from kiosk.models import Encounter
from kiosk.notify import alerts
from kiosk.notify.links import Links
from kiosk.protocol.events import Actor, record_event
from kiosk.protocol.state import Status

LAST_LEVEL = 3


def level_due_at(encounter: Encounter, level: int) -> datetime:
    """When the given level is alerted if nobody has acknowledged (minutes from the tap)."""
    school = encounter.school
    minutes = school.level1_minutes if level == 2 else school.level2_minutes
    return encounter.started_at + timedelta(minutes=minutes)


def escalate(session: Session, encounter: Encounter, links: Links, now: datetime) -> str:
    """Take one escalation step for an unacknowledged encounter; return what was done."""
    school = encounter.school
    level = encounter.escalation_level
    while level < LAST_LEVEL:
        level += 1
        rows = alerts.enqueue_alert(session, encounter, links, now, level=level)
        encounter.escalation_level = level
        if level < LAST_LEVEL:
            encounter.next_escalation_at = max(level_due_at(encounter, level + 1), now)
        else:
            encounter.next_escalation_at = now + timedelta(minutes=school.realert_minutes)
        if rows:
            record_event(
                session,
                encounter,
                "escalated",
                Actor.system(),
                now,
                {"level": level, "messages": [row.idempotency_key for row in rows]},
            )
            return f"level {level}"
        # Nobody is set up at this level: go straight on to the next one.
    encounter.realerts += 1
    rows = alerts.enqueue_reminder(session, encounter, links, now, encounter.realerts)
    encounter.next_escalation_at = now + timedelta(minutes=school.realert_minutes)
    record_event(
        session,
        encounter,
        "realerted",
        Actor.system(),
        now,
        {"reminder": encounter.realerts, "messages": [row.idempotency_key for row in rows]},
    )
    return f"reminder {encounter.realerts}"


def escalate_due(
    session_factory: sessionmaker[Session], links: Links, now: datetime, limit: int = 50
) -> int:
    """Escalate every encounter whose window has passed without an acknowledgement."""
    is_due = (
        Encounter.status == Status.OPEN,
        Encounter.first_acknowledged_at.is_(None),
        Encounter.next_escalation_at.is_not(None),
        Encounter.next_escalation_at <= now,
    )
    with session_factory() as session:  # a plain read first: most rounds have nothing due
        if session.scalar(select(Encounter.id).where(*is_due).limit(1)) is None:
            return 0
    with writing(), session_factory() as session, session.begin():
        due = session.scalars(
            select(Encounter)
            .where(*is_due)
            .order_by(Encounter.next_escalation_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for encounter in due:
            escalate(session, encounter, links, now)
        return len(due)
