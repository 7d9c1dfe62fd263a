"""What every office page shares: the signed-in user, the encounters they may see, and the
audit of each view of names."""

from __future__ import annotations

from typing import Any

from flask import (
    abort,
    current_app,
)
from sqlalchemy import select

from kiosk import audit, webdb
from kiosk.auth.policy import current_user, may, schools_for
from kiosk.clock import now_utc
from kiosk.models import (
    Encounter,
    User,
)
from kiosk.notify.links import Links
from kiosk.protocol.events import Actor


def office_user() -> User:
    """The signed-in user of a view behind @requires; refused outright if there is none, so
    the check survives `python -O`."""
    user = current_user()
    if user is None:
        abort(403)
    return user


def visible(user: User) -> Any:
    query = select(Encounter)
    schools = schools_for(user, "encounter.read")
    if schools is not None:
        query = query.where(Encounter.school_id.in_(schools or {-1}))
    return query


def find(public_id: str, action: str = "encounter.read") -> Encounter:
    """Return the encounter if this user may take the action on it: 404 if they may not see
    it (its existence is not told), 403 if they may see it but not take the action."""
    record = webdb.session().scalar(select(Encounter).where(Encounter.public_id == public_id))
    user = office_user()
    if record is None or not may(user, "encounter.read", record.school_id):
        abort(404)
    if not may(user, action, record.school_id):
        abort(403)
    return record


def office_actor(user: User) -> Actor:
    return Actor(kind="user", label=user.display_name, user_id=user.id)


def links() -> Links:
    return Links.from_settings(current_app.config)


def audit_view(action: str, subject: str) -> None:
    """Record a view of names: one short write of its own, before the page is rendered."""
    actor = f"user:{office_user().public_id}"
    with webdb.unit_of_work() as db:
        audit.record(
            db,
            current_app.config["AUDIT_KEY"],
            now_utc(),
            actor=actor,
            action=action,
            subject=subject,
        )
