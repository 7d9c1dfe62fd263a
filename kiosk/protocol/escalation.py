"""Escalate alerts nobody acknowledged: level 2, level 3, then reminders until someone does.

The schedule lives on the encounter (next_escalation_at), so a restart loses nothing: any
process that runs escalate_due() picks up whatever is due. Each encounter escalates in its
own short transaction: one that fails is logged, counted and tried again a little later,
and the others still escalate. An alert that fails for good brings the next level forward
(alert_failed, called by the delivery engine through the hooks kiosk/delivery.py wires).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from kiosk.db import unit_of_work
from kiosk.models import Encounter
from kiosk.notify.links import Links
from kiosk.protocol import routing
from kiosk.protocol.events import Actor, record_event
from kiosk.protocol.state import Status

log = logging.getLogger(__name__)

LAST_LEVEL = 3
# An encounter whose escalation failed is tried again after this long (by this process), so
# one broken encounter neither floods the log nor takes the write lock every round.
RETRY_FAILED_SECONDS = 30.0


def level_due_at(encounter: Encounter, level: int) -> datetime:
    """When the given level is alerted if nobody has acknowledged (minutes from the tap)."""
    school = encounter.school
    minutes = school.level2_after_minutes if level == 2 else school.level3_after_minutes
    return encounter.started_at + timedelta(minutes=minutes)


def escalate(session: Session, encounter: Encounter, links: Links, now: datetime) -> str:
    """Take one escalation step for an unacknowledged encounter; return what was done."""
    school = encounter.school
    level = encounter.escalation_level
    while level < LAST_LEVEL:
        level += 1
        rows = routing.enqueue_alert(session, encounter, links, now, level=level)
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
        # Nobody is set up at this level: say so on the record, and go on to the next one.
        record_event(
            session, encounter, "escalation_level_empty", Actor.system(), now, {"level": level}
        )
    encounter.realerts += 1
    rows = routing.enqueue_reminder(session, encounter, links, now, encounter.realerts)
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


def alert_failed(session: Session, encounter_id: int, now: datetime) -> bool:
    """An alert nobody will receive: the next escalation round escalates at once.

    Only while a higher level remains: past the last level, reminders keep their own
    schedule, so a contact that always fails cannot set off a reminder every round. Runs in
    the transaction that marks the row failed; say whether the escalation was brought
    forward (the deliverer then runs its next round, escalate_due() first, right away).
    """
    pulled = session.execute(
        update(Encounter)
        .where(
            Encounter.id == encounter_id,
            Encounter.status == Status.OPEN,
            Encounter.first_acknowledged_at.is_(None),
            Encounter.escalation_level < LAST_LEVEL,
            or_(Encounter.next_escalation_at.is_(None), Encounter.next_escalation_at > now),
        )
        .values(next_escalation_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(pulled.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class FailedEscalation:
    """An encounter whose last escalation attempt in this process failed (ids only)."""

    encounter_id: int
    public_id: str
    school_id: int
    at: datetime
    # The exception's type only: database errors quote the statement's parameters.
    error: str


class _Failures:
    """Encounters whose escalation is failing, kept per process (read by /healthz)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failing: dict[int, FailedEscalation] = {}
        self.total = 0

    def failed(self, failure: FailedEscalation) -> None:
        with self._lock:
            self._failing[failure.encounter_id] = failure
            self.total += 1

    def succeeded(self, encounter_id: int) -> None:
        with self._lock:
            self._failing.pop(encounter_id, None)

    def keep_only(self, encounter_ids: set[int]) -> None:
        """Forget encounters no longer due (acknowledged or resolved): nothing is failing."""
        with self._lock:
            for encounter_id in set(self._failing) - encounter_ids:
                del self._failing[encounter_id]

    def ids(self) -> list[int]:
        with self._lock:
            return list(self._failing)

    def waiting(self, now: datetime) -> list[int]:
        """Failed encounters not yet due for another try."""
        retry = timedelta(seconds=RETRY_FAILED_SECONDS)
        with self._lock:
            return [f.encounter_id for f in self._failing.values() if now < f.at + retry]

    def snapshot(self) -> list[FailedEscalation]:
        with self._lock:
            return sorted(self._failing.values(), key=lambda f: f.at)

    def reset(self) -> None:
        with self._lock:
            self._failing.clear()
            self.total = 0


_failures = _Failures()


def escalation_failures() -> int:
    """How many encounters' escalation is failing: their last try in this process failed."""
    return len(_failures.ids())


def escalation_failures_total() -> int:
    """How many escalation attempts have failed in this process since it started."""
    return _failures.total


def failing_escalations() -> list[FailedEscalation]:
    """The encounters whose escalation is failing, oldest failure first."""
    return _failures.snapshot()


def reset_escalation_failures() -> None:
    """Forget every failure (tests: each starts with a clean process state)."""
    _failures.reset()


def _is_due(now: datetime) -> tuple[Any, ...]:
    return (
        Encounter.status == Status.OPEN,
        Encounter.first_acknowledged_at.is_(None),
        Encounter.next_escalation_at.is_not(None),
        Encounter.next_escalation_at <= now,
    )


def escalate_due(
    session_factory: sessionmaker[Session], links: Links, now: datetime, limit: int = 50
) -> int:
    """Escalate every encounter whose window has passed without an acknowledgement.

    Return how many escalated. Each encounter escalates in a transaction of its own, so one
    that fails (logged and counted, see escalation_failures()) stops no other; it is tried
    again after RETRY_FAILED_SECONDS.
    """
    is_due = _is_due(now)
    # Plain reads first: most rounds have nothing due and never queue for the write lock.
    with session_factory() as session:
        failing = _failures.ids()
        if failing:
            still_due = session.scalars(
                select(Encounter.id).where(Encounter.id.in_(failing), *is_due)
            ).all()
            _failures.keep_only(set(still_due))
        query = select(Encounter.id, Encounter.public_id, Encounter.school_id).where(*is_due)
        waiting = _failures.waiting(now)
        if waiting:
            query = query.where(Encounter.id.not_in(waiting))
        due = session.execute(
            query.order_by(Encounter.next_escalation_at, Encounter.id).limit(limit)
        ).all()
    escalated = 0
    for encounter_id, public_id, school_id in due:
        try:
            escalated += _escalate_one(session_factory, encounter_id, links, now)
        except Exception as exc:
            _failures.failed(
                FailedEscalation(encounter_id, public_id, school_id, now, type(exc).__name__)
            )
            log.error(
                "escalation of encounter %s failed (%s at %s); the others go on, and it is "
                "tried again in %.0f s",
                encounter_id,
                type(exc).__name__,
                _where(exc),
                RETRY_FAILED_SECONDS,
            )
        else:
            _failures.succeeded(encounter_id)
    return escalated


def _escalate_one(
    session_factory: sessionmaker[Session], encounter_id: int, links: Links, now: datetime
) -> int:
    """Escalate one encounter in its own transaction; 0 if it is no longer due."""
    with unit_of_work(session_factory) as session:
        encounter = session.scalar(
            select(Encounter)
            .where(Encounter.id == encounter_id, *_is_due(now))
            .with_for_update(skip_locked=True)
        )
        if encounter is None:  # acknowledged meanwhile, or another deliverer has it
            return 0
        escalate(session, encounter, links, now)
        return 1


def _where(exc: BaseException) -> str:
    """Where the error was raised, and the last frame of ours it passed: no message, no data."""
    frames: Sequence[traceback.FrameSummary] = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    ours = [frame for frame in frames if "/kiosk/" in frame.filename]
    picked = [frames[-1]] + ([ours[-1]] if ours and ours[-1] is not frames[-1] else [])
    return ", from ".join(
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}" for frame in picked
    )
