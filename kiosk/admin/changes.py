"""Every administrative change goes into the audit log: who, when, and what changed.

Only the fields that changed are kept, before and after. Secrets never are: a field named
in SECRET_FIELDS is recorded as "(changed)" and nothing more."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from kiosk import audit
from kiosk.clock import now_utc
from kiosk.models import User

SECRET_FIELDS = frozenset(
    {"password", "password_hash", "pin", "pin_hash", "webhook_secret", "totp_secret", "token"}
)
CHANGED = "(changed)"


def difference(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """The fields whose values differ, as {"before": {...}, "after": {...}}."""
    before = dict(before or {})
    after = dict(after or {})
    names = sorted(set(before) | set(after))
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for name in names:
        if before.get(name) == after.get(name):
            continue
        if name in SECRET_FIELDS:
            old[name], new[name] = (CHANGED if name in before else None), CHANGED
            continue
        if name in before:
            old[name] = before[name]
        if name in after:
            new[name] = after[name]
    return {"before": old, "after": new}


def actor_of(user: User | None) -> str:
    return f"user:{user.public_id}" if user is not None else "cli"


def record_change(
    db: Session,
    actor: User | None,
    action: str,
    subject: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> int:
    """Append one administrative change to the audit log, inside the caller's unit of work.

    actor None means the command line. action reads like "school.update"; subject names
    what changed, like "school:<public id>"."""
    return audit.record(
        db,
        current_app.config["AUDIT_KEY"],
        now_utc(),
        actor=actor_of(actor),
        action=f"admin.{action}",
        subject=subject,
        details=difference(before, after),
    )
