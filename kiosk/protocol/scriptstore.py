"""Script versions are data: stored whole, approved by counsel, remembered per encounter.

A version is never edited: an edit, an import or the shipped pack taken up again is a new
draft. Desks show the version counsel approved last, or the shipped draft while none is
approved. A newer release's shipped pack never takes an approved version's place: it is
offered to counsel as a difference (see shipped_changes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session

from kiosk.db import locked
from kiosk.models import RoleGrant, ScriptVersion, User
from kiosk.protocol.scriptdiff import BlockChange, pack_changes
from kiosk.protocol.scripts import ScriptPack, default_pack_data, load_pack

BUILT_IN = "built-in default"
DRAFT = "draft"
APPROVED = "approved"
# How long an approval stands before counsel is asked to look again, unless counsel says.
REVIEW_AFTER = timedelta(days=365)
# Larger than any pack a district writes (the shipped one is about 60 kB), small enough
# that a pasted mistake cannot fill the database.
MAX_PACK_CHARS = 500_000


class ScriptError(ValueError):
    """A version that cannot be stored or approved, with the reason in words."""


def pack_sha(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def shipped_sha() -> str:
    """The sha256 of the pack this release ships."""
    return _built_in_sha()


def current_script_version(session: Session, now: datetime) -> ScriptVersion:
    """Return the version a new encounter shows, storing the shipped draft the first time.

    The version counsel approved last wins. While none is approved, desks show this
    release's shipped draft: an older shipped draft is kept (encounters point at it) but
    no longer active.
    """
    sha = _built_in_sha()
    # One query on the tap's path: the approved version in use if there is one, else the
    # stored shipped draft.
    found = session.scalar(
        select(ScriptVersion)
        .where(
            or_(
                and_(ScriptVersion.status == APPROVED, ScriptVersion.active),
                ScriptVersion.sha256 == sha,
            )
        )
        .order_by(
            case((and_(ScriptVersion.status == APPROVED, ScriptVersion.active), 0), else_=1),
            ScriptVersion.id.desc(),
        )
        .limit(1)
    )
    if found is not None and found.active:
        return found
    # Not active, so not the approved one: the shipped draft, stored but put aside.
    stored = found
    session.execute(
        update(ScriptVersion)
        .where(ScriptVersion.active, ScriptVersion.sha256 != sha)
        .values(active=False)
        .execution_options(synchronize_session="fetch")
    )
    if stored is not None:
        stored.active = True
        session.flush()
        return stored
    data = default_pack_data()
    stored = ScriptVersion(
        label=data["label"][:80],
        sha256=sha,
        content=json.dumps(data, sort_keys=True),
        status=DRAFT,
        author=BUILT_IN,
        active=True,
        created_at=now,
    )
    session.add(stored)
    session.flush()
    return stored


def in_use(session: Session) -> ScriptVersion | None:
    """The version desks show now, read only: the approved one, else the stored shipped draft.

    None only before the shipped draft was ever stored (the first tap or `db upgrade`
    stores it)."""
    approved = _approved_in_use(session)
    if approved is not None:
        return approved
    return session.scalar(select(ScriptVersion).where(ScriptVersion.sha256 == _built_in_sha()))


def _approved_in_use(session: Session) -> ScriptVersion | None:
    return session.scalar(
        select(ScriptVersion)
        .where(ScriptVersion.status == APPROVED, ScriptVersion.active)
        .order_by(ScriptVersion.id.desc())
        .limit(1)
    )


def all_versions(session: Session) -> list[ScriptVersion]:
    """Every stored version, newest first."""
    return list(session.scalars(select(ScriptVersion).order_by(ScriptVersion.id.desc())))


def find_version(session: Session, version_id: int) -> ScriptVersion:
    version = session.get(ScriptVersion, version_id)
    if version is None:
        raise ScriptError(f"no script version {version_id} (see `scripts list`)")
    return version


def parse_pack_text(text: str) -> dict[str, Any]:
    """Read a pack from JSON text and validate it; raise ScriptError saying what is wrong."""
    if len(text) > MAX_PACK_CHARS:
        raise ScriptError(f"the pack is longer than {MAX_PACK_CHARS} characters")
    if any(ord(char) < 32 and char not in "\t\n\r" for char in text):
        raise ScriptError("the pack holds control characters; remove them and save again")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScriptError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    return validated(data)


def validated(data: Any) -> dict[str, Any]:
    """Check pack data with load_pack and return it as a new draft's data."""
    if isinstance(data, dict):
        # Approval is recorded on the version, not in its words: every new version is a draft.
        data = {**data, "status": DRAFT}
    try:
        load_pack(data)
    except ValueError as exc:
        raise ScriptError(str(exc)) from exc
    return data


def pack_text(version: ScriptVersion) -> str:
    """A version's pack as readable JSON, the starting point of an edit."""
    data = json.loads(version.content)
    data["status"] = DRAFT
    # Stored with sorted keys; shown in the order people read a pack. Values are untouched,
    # so saving it unchanged is recognised as the same words.
    data = _ordered(data, ("label", "status", "notice", "blocks"))
    data["blocks"] = [
        _ordered(block, ("step", "situation", "priority", "say", "do", "never"))
        if isinstance(block, dict)
        else block
        for block in data.get("blocks") or []
    ]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _ordered(data: dict[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    return {
        **{key: data[key] for key in first if key in data},
        **{key: value for key, value in data.items() if key not in first},
    }


@dataclass(frozen=True)
class NewVersion:
    """What a new draft is made of: its data, who wrote it, and what it started from."""

    data: dict[str, Any]
    author: str
    based_on_id: int | None = None


def store_draft(session: Session, new: NewVersion, now: datetime) -> ScriptVersion:
    """Store a new draft version; refuse one whose words are already stored."""
    data = validated(new.data)
    sha = pack_sha(data)
    same = session.scalar(select(ScriptVersion).where(ScriptVersion.sha256 == sha))
    if same is not None:
        raise ScriptError(
            f"these words are already stored as version {same.id}; nothing new to save"
        )
    if new.based_on_id is not None:
        find_version(session, new.based_on_id)
    version = ScriptVersion(
        label=str(data["label"]).strip()[:80],
        sha256=sha,
        content=json.dumps(data, sort_keys=True),
        status=DRAFT,
        author=new.author[:120],
        based_on_id=new.based_on_id,
        active=False,
        created_at=now,
    )
    session.add(version)
    session.flush()
    return version


def draft_from_shipped(session: Session, author: str, now: datetime) -> ScriptVersion:
    """Take up this release's shipped pack as a draft, starting from the version in use."""
    current = in_use(session)
    return store_draft(
        session,
        NewVersion(default_pack_data(), author, current.id if current else None),
        now,
    )


def default_review_due(today: date) -> date:
    return today + REVIEW_AFTER


def is_counsel(session: Session, user: User) -> bool:
    """Only a district-wide counsel account approves: the script serves every school."""
    grant = session.scalar(
        select(RoleGrant).where(
            RoleGrant.user_id == user.id,
            RoleGrant.role == "counsel",
            RoleGrant.school_id.is_(None),
        )
    )
    return grant is not None and user.active


def approve(
    session: Session, version_id: int, approver: User, review_due: date, now: datetime
) -> ScriptVersion:
    """Approve a draft: it becomes the version every new encounter shows.

    The first write makes this version the only active one, in one statement over every
    row, so two approvals at once are taken one after the other and the desks end on the
    one approved last.
    """
    if not is_counsel(session, approver):
        raise ScriptError("only a district-wide counsel account can approve a script")
    if review_due <= now.date():
        raise ScriptError("the review date must be after today")
    # First, before any row is read locked: an approval that waits here for another one
    # then reads what that one committed (a refusal rolls all of this back).
    session.execute(
        update(ScriptVersion)
        .values(active=case((ScriptVersion.id == version_id, True), else_=False))
        .execution_options(synchronize_session="fetch")
    )
    version = locked(session, ScriptVersion, version_id)
    if version is None:
        raise ScriptError(f"no script version {version_id}")
    if version.status != DRAFT:
        raise ScriptError(f"version {version_id} is already approved")
    version.status = APPROVED
    version.active = True
    version.approved_by = approver.display_name[:120]
    version.approved_by_user_id = approver.id
    version.approved_at = now
    version.review_due = review_due
    version.shipped_sha = _built_in_sha()
    session.flush()
    return version


def review_overdue(version: ScriptVersion, today: date) -> bool:
    return version.review_due is not None and version.review_due < today


def shipped_changes(session: Session) -> tuple[ScriptVersion, list[BlockChange]] | None:
    """When this release ships a pack that changed since counsel approved the version in
    use: that version and how the shipped pack differs from it. None otherwise."""
    current = _approved_in_use(session)
    sha = _built_in_sha()
    if current is None or current.shipped_sha in (None, sha) or current.sha256 == sha:
        return None
    if session.scalar(select(ScriptVersion.id).where(ScriptVersion.sha256 == sha)) is not None:
        # Already taken up as a draft (or approved): the versions list shows it.
        return None
    return current, pack_changes(json.loads(current.content), default_pack_data())


def changes_between(old: ScriptVersion, new: ScriptVersion) -> list[BlockChange]:
    return pack_changes(json.loads(old.content), json.loads(new.content))


def as_record(version: ScriptVersion) -> dict[str, Any]:
    """What the audit log keeps of a version: no words, only what identifies it."""
    return {
        "label": version.label,
        "sha256": version.sha256,
        "status": version.status,
        "based_on": version.based_on_id,
        "review_due": version.review_due.isoformat() if version.review_due else None,
    }


@lru_cache(maxsize=1)
def _built_in_sha() -> str:
    return pack_sha(default_pack_data())


@lru_cache(maxsize=16)
def _parse(sha: str, content: str) -> ScriptPack:
    return load_pack(json.loads(content))


def pack_for(version: ScriptVersion) -> ScriptPack:
    """Return the parsed pack of a stored version (parsed once per process)."""
    return _parse(version.sha256, version.content)


_packs_by_id: dict[int, ScriptPack] = {}


def pack_by_id(session: Session, version_id: int) -> ScriptPack:
    """Return a stored version's pack; versions never change, so each is read once."""
    pack = _packs_by_id.get(version_id)
    if pack is None:
        version = session.get(ScriptVersion, version_id)
        if version is None:
            raise LookupError(f"no script version {version_id}")
        pack = _packs_by_id[version_id] = pack_for(version)
    return pack
