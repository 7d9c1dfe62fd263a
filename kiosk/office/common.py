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
from kiosk.auth.policy import (
    OFFICE_ROLES,
    can_view_encounter,
    current_user,
    grants,
)
from kiosk.clock import now_utc
from kiosk.models import (
    Encounter,
    User,
)
from kiosk.notify.links import Links
from kiosk.protocol.events import Actor


def office_user() -> User:
    user = current_user()
    assert user is not None
    return user


def school_ids(user: User) -> set[int] | None:
    """The schools whose encounters the user sees; None means every school."""
    ids = {g.school_id for g in grants(user) if g.role in OFFICE_ROLES}
    return None if None in ids else {i for i in ids if i is not None}


def visible(user: User) -> Any:
    query = select(Encounter)
    schools = school_ids(user)
    if schools is not None:
        query = query.where(Encounter.school_id.in_(schools or {-1}))
    return query


def find(public_id: str) -> Encounter:
    """Return the encounter if this user may see it; otherwise 404 (existence is not told)."""
    record = webdb.session().scalar(select(Encounter).where(Encounter.public_id == public_id))
    if record is None or not can_view_encounter(office_user(), record):
        abort(404)
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
