"""Kiosks that have gone quiet: a kiosk that has not checked in for a while during its
school's hours may be switched off, asleep, off the network, or may have lost its setup.
The admins are told by email, once per silence, and the kiosks page shows it.

A healthy kiosk checks in on every use and, when idle, from its idle screen's light poll
(at most once a minute is written). Silence is counted in school hours only, in the school's
time zone: a kiosk switched off at the end of Friday is not reported on Saturday, nor in the
first minutes of Monday.

Run by the delivery engine beside the escalation round (kiosk/delivery.py wires it), at most
once a minute per process; rows are locked, so two processes never both send.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from kiosk.auth.devices import usable
from kiosk.db import locked, unit_of_work
from kiosk.localtime import long_time, zone
from kiosk.models import Kiosk, RoleGrant, School, User
from kiosk.notify.outbox import enqueue

log = logging.getLogger(__name__)

KIND = "kiosk_silent"
# Silence older than this is still reported, but counted over this many days only.
LOOK_BACK_DAYS = 14


def _hm(value: str, fallback: str) -> tuple[int, int]:
    try:
        hours, minutes = (value or fallback).split(":")
        return int(hours), int(minutes)
    except ValueError:
        hours, minutes = fallback.split(":")
        return int(hours), int(minutes)


def school_minutes_between(school: School, start: datetime, end: datetime) -> float:
    """How many minutes of the school's open hours, on its school days, lie between two
    moments (in its time zone, so a change of clocks is counted as it is lived)."""
    start = max(start, end - timedelta(days=LOOK_BACK_DAYS))
    if end <= start:
        return 0.0
    where = zone(school.timezone)
    days = {int(d) for d in (school.school_days or "").split(",") if d.strip().isdigit()}
    opens, closes = _hm(school.hours_open, "00:00"), _hm(school.hours_close, "23:59")
    total = 0.0
    day: date = start.astimezone(where).date()
    last: date = end.astimezone(where).date()
    while day <= last:
        if day.weekday() in days:
            day_open = datetime(day.year, day.month, day.day, *opens, tzinfo=where)
            day_close = datetime(day.year, day.month, day.day, *closes, tzinfo=where)
            overlap = min(end, day_close) - max(start, day_open)
            total += max(overlap.total_seconds(), 0.0) / 60
        day += timedelta(days=1)
    return total


def last_sign_of_life(kiosk: Kiosk) -> datetime | None:
    return kiosk.last_seen_at or kiosk.enrolled_at


def is_silent(kiosk: Kiosk, now: datetime, minutes: int) -> bool:
    """True for a set-up kiosk that has not checked in for `minutes` of school hours."""
    seen = last_sign_of_life(kiosk)
    if kiosk.enrolled_at is None or seen is None or not usable(kiosk, now) or minutes <= 0:
        return False
    if seen > now - timedelta(minutes=minutes):
        return False
    return school_minutes_between(kiosk.school, seen, now) >= minutes


def _already_told(kiosk: Kiosk) -> bool:
    """The admins were told of this silence (after the last check-in) already."""
    seen = last_sign_of_life(kiosk)
    return (
        kiosk.silence_alerted_at is not None
        and seen is not None
        and (kiosk.silence_alerted_at >= seen)
    )


def admins_to_tell(session: Session, school_id: int) -> list[User]:
    """Every active admin with an email, district-wide or for this school."""
    return list(
        session.scalars(
            select(User)
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .where(
                RoleGrant.role == "admin",
                or_(RoleGrant.school_id.is_(None), RoleGrant.school_id == school_id),
                User.active.is_(True),
                User.email.is_not(None),
            )
            .distinct()
            .order_by(User.id)
        )
    )


def message(kiosk: Kiosk, base_url: str) -> tuple[str, str]:
    """The email: which kiosk, since when, what to check; no record content."""
    school = kiosk.school
    seen = last_sign_of_life(kiosk)
    since = long_time(seen, school.timezone) if seen else "it was set up"
    subject = f"Kiosk not checking in: {kiosk.label}, {school.name}"
    body = (
        f'The kiosk "{kiosk.label}" at {school.name} has not checked in since {since}, '
        "during school hours.\n\n"
        "It may be switched off, asleep, off the network, or its browser may have lost its "
        "setup. Please check the device: its screen should show the start button. Its "
        f"self-check page, {base_url}/check, says whether it is set up and can reach the "
        "server.\n\n"
        f"Kiosks: {base_url}/admin/kiosks\n\n"
        "You receive this once for each silence; it is not repeated until the kiosk has "
        "checked in again.\n"
    )
    return subject, body


def alert_silent_kiosks(
    session_factory: sessionmaker[Session], base_url: str, now: datetime, minutes: int
) -> int:
    """Email the admins about each kiosk that has newly gone quiet; return how many."""
    if minutes <= 0:
        return 0
    cutoff = now - timedelta(minutes=minutes)
    with session_factory() as session:
        # Plain reads first: most rounds find nothing and take no write lock.
        candidates = session.scalars(
            select(Kiosk)
            .join(School, School.id == Kiosk.school_id)
            .where(
                Kiosk.enrolled_at.is_not(None),
                Kiosk.revoked_at.is_(None),
                or_(Kiosk.last_seen_at.is_(None), Kiosk.last_seen_at <= cutoff),
            )
        ).all()
        due = [k.id for k in candidates if not _already_told(k) and is_silent(k, now, minutes)]
    told = 0
    for kiosk_id in due:
        try:
            told += _tell_one(session_factory, kiosk_id, base_url, now, minutes)
        except Exception as exc:  # one kiosk's trouble stops no other
            log.error("kiosk check-in alert for kiosk %s failed (%s)", kiosk_id, type(exc).__name__)
    return told


def _tell_one(
    session_factory: sessionmaker[Session],
    kiosk_id: int,
    base_url: str,
    now: datetime,
    minutes: int,
) -> int:
    with unit_of_work(session_factory) as session:
        kiosk = locked(session, Kiosk, kiosk_id)
        if kiosk is None or _already_told(kiosk) or not is_silent(kiosk, now, minutes):
            return 0  # it checked in meanwhile, or another process told them
        seen = last_sign_of_life(kiosk)
        assert seen is not None
        subject, body = message(kiosk, base_url)
        silence = int(seen.timestamp())
        for admin in admins_to_tell(session, kiosk.school_id):
            assert admin.email is not None
            payload: dict[str, Any] = {"kind": KIND, "kiosk": kiosk.public_id}
            enqueue(
                session,
                key=f"kiosk-{kiosk.public_id}.{admin.id}.email.{KIND}.{silence}",
                encounter_id=None,
                contact_id=None,
                channel="email",
                kind=KIND,
                level=0,
                sequence=0,
                recipient=admin.email,
                subject=subject,
                body=body,
                payload=payload,
                now=now,
            )
        kiosk.silence_alerted_at = now
        log.warning("kiosk %s has not checked in; the admins are told", kiosk.public_id)
        return 1
