"""Script versions are data: stored whole, chosen by the district, remembered per encounter."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.models import ScriptVersion
from kiosk.protocol.scripts import ScriptPack, default_pack_data, load_pack


def pack_sha(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


BUILT_IN = "built-in default"


def current_script_version(session: Session, now: datetime) -> ScriptVersion:
    """Return the active version, storing the built-in default pack the first time.

    A district that never replaced the built-in draft gets this release's draft: the old
    one is kept (encounters point at it) but no longer active. A version a district stored
    or approved itself is never replaced.
    """
    version = session.scalar(
        select(ScriptVersion)
        .where(ScriptVersion.active)
        .order_by(ScriptVersion.created_at.desc(), ScriptVersion.id.desc())
        .limit(1)
    )
    sha = _built_in_sha()
    if version is not None and not _outdated_built_in(version, sha):
        return version
    data = default_pack_data()
    stored = session.scalar(select(ScriptVersion).where(ScriptVersion.sha256 == sha))
    if version is not None:
        version.active = False
    if stored is not None:
        stored.active = True
        session.flush()
        return stored
    stored = ScriptVersion(
        label=data["label"],
        sha256=sha,
        content=json.dumps(data, sort_keys=True),
        status=data.get("status", "draft"),
        author=BUILT_IN,
        active=True,
        created_at=now,
    )
    session.add(stored)
    session.flush()
    return stored


@lru_cache(maxsize=1)
def _built_in_sha() -> str:
    return pack_sha(default_pack_data())


def _outdated_built_in(version: ScriptVersion, sha: str) -> bool:
    return (
        version.author == BUILT_IN
        and version.approved_at is None
        and version.status == "draft"
        and version.sha256 != sha
    )


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
