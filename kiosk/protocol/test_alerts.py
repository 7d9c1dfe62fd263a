"""Test alerts: an administrator checks a school's routing end to end without an encounter.

A test alert goes to the contacts a real alert would reach at level 1 at that moment (school
hours decide between the usual and the after-hours contacts), through the same outbox,
channels and acknowledgement links. It does not escalate: a test checks that level 1 and its
links work, and must not page the backups of a school where nothing is happening. It is a
TestAlert row, never an Encounter, so no list, count or export of records can show it.
Each operation flushes and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.localtime import is_school_hours
from kiosk.models import Contact, OutboxMessage, School, TestAlert, User
from kiosk.notify.alerts import enqueue_test
from kiosk.notify.links import Links
from kiosk.protocol.routing import contacts_for
from kiosk.protocol.setup import SetupError


@dataclass(frozen=True)
class SentTest:
    test: TestAlert
    contacts: list[Contact]
    messages: list[OutboxMessage]
    after_hours: bool


def send_test_alert(
    session: Session, school: School, links: Links, now: datetime, by: User | None = None
) -> SentTest:
    """Alert the school's level-1 contacts of this moment with a message marked TEST."""
    contacts = contacts_for(session, school, 1, now)
    after_hours = not is_school_hours(school, now)
    if not contacts:
        raise SetupError(
            f"nobody is set up at level 1 for {school.name}: add a contact first", "school"
        )
    test = TestAlert(
        school_id=school.id,
        requested_by_user_id=by.id if by else None,
        sent_at=now,
        contacts_alerted=len(contacts),
    )
    session.add(test)
    session.flush()
    rows = enqueue_test(session, test, school, contacts, links, now)
    return SentTest(test, contacts, rows, after_hours)


def find_test(session: Session, public_id: str) -> TestAlert | None:
    return session.scalar(select(TestAlert).where(TestAlert.public_id == public_id))


def was_sent_to(session: Session, test: TestAlert, contact_id: int) -> bool:
    """Whether this test alert went to the contact (an acknowledgement link names both)."""
    return bool(
        session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.test_alert_id == test.id, OutboxMessage.contact_id == contact_id)
        )
    )


@dataclass(frozen=True)
class TestAck:
    """The outcome of a test alert's acknowledgement link."""

    __test__ = False

    first: bool
    at: datetime
    contact_id: int | None


def acknowledge_test(
    session: Session, test: TestAlert, contact: Contact, now: datetime, channel: str
) -> TestAck:
    """Record the first acknowledgement of a test alert (the row is locked by the caller).

    Later ones change nothing: the test measures how fast the first person answered."""
    if test.acknowledged_at is not None:
        return TestAck(False, test.acknowledged_at, test.acknowledged_contact_id)
    test.acknowledged_at = now
    test.acknowledged_contact_id = contact.id
    test.acknowledged_channel = channel
    session.flush()
    return TestAck(True, now, contact.id)


def seconds_to_acknowledge(test: TestAlert) -> int | None:
    """Whole seconds from sending to the first acknowledgement, or None if none yet."""
    if test.acknowledged_at is None:
        return None
    return max(int((test.acknowledged_at - test.sent_at).total_seconds()), 0)


@dataclass(frozen=True)
class TestRow:
    """One test alert as the administration lists it."""

    __test__ = False

    test: TestAlert
    school: School
    contact: Contact | None
    # Who sent it: an administrator's name, or "command line".
    sent_by: str
    delivered: int
    failed: int
    seconds: int | None


def recent_tests(session: Session, limit: int = 100) -> list[TestRow]:
    """The latest test alerts, newest first, with who acknowledged and how their messages fared."""
    tests = session.execute(
        select(TestAlert, School, User.display_name)
        .join(School, School.id == TestAlert.school_id)
        .outerjoin(User, User.id == TestAlert.requested_by_user_id)
        .order_by(TestAlert.sent_at.desc(), TestAlert.id.desc())
        .limit(limit)
    ).all()
    ids = [test.id for test, _, _ in tests]
    states: dict[tuple[int, str], int] = {}
    if ids:
        for test_id, status, count in session.execute(
            select(OutboxMessage.test_alert_id, OutboxMessage.status, func.count())
            .where(OutboxMessage.test_alert_id.in_(ids))
            .group_by(OutboxMessage.test_alert_id, OutboxMessage.status)
        ):
            states[(test_id, status)] = count
    contact_ids = {t.acknowledged_contact_id for t, _, _ in tests if t.acknowledged_contact_id}
    contacts = (
        {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(contact_ids)))}
        if contact_ids
        else {}
    )
    return [
        TestRow(
            test=test,
            school=school,
            contact=contacts.get(test.acknowledged_contact_id or 0),
            sent_by=sender or "command line",
            delivered=states.get((test.id, "sent"), 0),
            failed=states.get((test.id, "failed"), 0) + states.get((test.id, "dead"), 0),
            seconds=seconds_to_acknowledge(test),
        )
        for test, school, sender in tests
    ]
