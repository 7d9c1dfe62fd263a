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


def current_script_version(session: Session, now: datetime) -> ScriptVersion:
    """Return the active version, storing the built-in default pack the first time."""
    version = session.scalar(
        select(ScriptVersion)
        .where(ScriptVersion.active)
        .order_by(ScriptVersion.created_at.desc(), ScriptVersion.id.desc())
        .limit(1)
    )
    if version is not None:
        return version
    data = default_pack_data()
    sha = pack_sha(data)
    version = session.scalar(select(ScriptVersion).where(ScriptVersion.sha256 == sha))
    if version is None:
        version = ScriptVersion(
            label=data["label"],
            sha256=sha,
            content=json.dumps(data, sort_keys=True),
            status=data.get("status", "draft"),
            author="built-in default",
            active=True,
            created_at=now,
        )
        session.add(version)
        session.flush()
    return version


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
