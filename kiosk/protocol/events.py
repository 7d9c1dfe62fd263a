"""Every change to an encounter goes through record_event()."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from kiosk.models import Agent, Document, Encounter, EncounterEvent
from kiosk.models.sealed import sealed_columns

# Keys whose values may name someone: the event says only that they were recorded. The
# values themselves are sealed in their own columns (kiosk.sealing).
NAMING_KEYS = frozenset(
    {*sealed_columns(Encounter), *sealed_columns(Agent), *sealed_columns(Document)}
    | {"notes", "text", "by", "reason"}
)


@dataclass(frozen=True)
class Actor:
    """Who made a change: a kiosk, a signed-in user, a contact (by link) or the system."""

    kind: str
    label: str = ""
    kiosk_id: int | None = None
    user_id: int | None = None
    contact_id: int | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(kind="system", label="system")


def canonical_json(data: Any) -> str:
    """Serialise so that the same data always gives the same bytes (for hashing)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def without_free_text(data: dict[str, Any]) -> dict[str, Any]:
    """Replace free text that may name someone with the word "recorded"."""
    return {
        key: ("recorded" if key in NAMING_KEYS and isinstance(value, str) and value else value)
        for key, value in data.items()
    }


def record_event(
    session: Session,
    encounter: Encounter,
    kind: str,
    actor: Actor,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> EncounterEvent:
    """Append one event to the encounter, numbered in order, with the script version shown."""
    # An UPDATE ... RETURNING takes the encounter's row lock, so concurrent writers
    # (desk and office) get distinct, gapless sequence numbers.
    seq = session.execute(
        update(Encounter)
        .where(Encounter.id == encounter.id)
        .values(event_count=Encounter.event_count + 1)
        .returning(Encounter.event_count)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    # The row already holds seq: keep the loaded object in step without a second UPDATE.
    set_committed_value(encounter, "event_count", seq)
    event = EncounterEvent(
        encounter_id=encounter.id,
        seq=seq,
        at=now,
        kind=kind,
        actor_kind=actor.kind,
        actor_label=actor.label,
        actor_user_id=actor.user_id,
        actor_kiosk_id=actor.kiosk_id,
        actor_contact_id=actor.contact_id,
        script_version_id=encounter.script_version_id,
        data=canonical_json(without_free_text(data or {})),
    )
    session.add(event)
    return event
