"""Bearer tokens for the read-only API: made, found and revoked here, for the admin pages,
the command line and the API's own check (kiosk.auth.policy.token_required).

A token is shown once, when it is made; only its SHA-256 is kept (a token is 256 random
bits, so a plain hash is enough: there is nothing to guess), with its first characters to
tell tokens apart in lists. Operations take a session and plain values, flush, and never
commit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kiosk.models import ApiToken, RoleGrant, User
from kiosk.protocol.setup import SetupError, one_line

# Who may hold a token: those who read records and change nothing through it. The policy's
# "api.read" action is this set, so a token stops working when its holder loses both roles.
API_ROLES = frozenset({"reviewer", "counsel"})
PREFIX = "kapi_"
SHOWN = 12  # characters kept for display, the prefix included
LABEL_LIMIT = 80


@dataclass(frozen=True)
class Made:
    row: ApiToken
    # The token itself: shown once, never stored.
    value: str


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def holds_api_role(session: Session, user_id: int) -> bool:
    found = session.scalar(
        select(RoleGrant.id)
        .where(RoleGrant.user_id == user_id, RoleGrant.role.in_(API_ROLES))
        .limit(1)
    )
    return found is not None


def clean_label(value: str | None) -> str:
    label = one_line((value or "").strip(), "the label", "label")
    if not label:
        raise SetupError("a label is needed, such as the system that will use the token", "label")
    if len(label) > LABEL_LIMIT:
        raise SetupError(f"the label is longer than {LABEL_LIMIT} characters", "label")
    return label


def create(session: Session, user: User, label: str, now: datetime) -> Made:
    """Make a token for an active reviewer or counsel."""
    clean = clean_label(label)
    if not user.active:
        raise SetupError("this person is disabled", "user")
    if not holds_api_role(session, user.id):
        raise SetupError("only a reviewer or counsel may hold an API token", "user")
    value = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        label=clean,
        token_hash=digest(value),
        prefix=value[:SHOWN],
        created_at=now,
    )
    session.add(row)
    session.flush()
    return Made(row, value)


def revoke(session: Session, token_id: int, now: datetime) -> tuple[ApiToken, bool]:
    """Stop a token at once; say whether it changed (revoking it again changes nothing)."""
    row = session.scalar(select(ApiToken).where(ApiToken.id == token_id).with_for_update())
    if row is None:
        raise SetupError(f"no API token with ID {token_id}", "token_id")
    if row.revoked_at is not None:
        return row, False
    row.revoked_at = now
    session.flush()
    return row, True


def all_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def find(session: Session, value: str) -> ApiToken | None:
    """The live token of an active person, or None: unknown, revoked, or its holder disabled.
    Whether the holder may still read is the policy's question, not this one."""
    if not value.startswith(PREFIX) or len(value) > 200:
        return None
    wanted = digest(value)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == wanted))
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        return None
    if row.revoked_at is not None or not row.user.active:
        return None
    return row


def snapshot(row: ApiToken) -> dict[str, object]:
    """What the audit log keeps of a token: never the token, nor its hash."""
    return {
        "label": row.label,
        "prefix": row.prefix,
        "holder": f"user:{row.user.public_id}",
        "revoked": row.revoked_at is not None,
    }


def used(session: Session, token_id: int, now: datetime) -> bool:
    """Note the token's use, in the write that records it; False if it was revoked meanwhile
    (the row is locked by this update, so a use and a revoke never overlap)."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(last_used_at=now)
    )
    return bool(result.rowcount)


def eligible_holders(session: Session) -> list[User]:
    """Active people who may hold a token, by name."""
    return list(
        session.scalars(
            select(User)
            .where(
                User.active,
                User.id.in_(select(RoleGrant.user_id).where(RoleGrant.role.in_(API_ROLES))),
            )
            .order_by(User.display_name, User.id)
        )
    )
