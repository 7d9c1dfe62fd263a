"""Sealed columns: plain text in Python, AES-GCM in the database (see kiosk.sealing).

A model lists its row identity in ``__seal_identity__``; every ``SealedText`` column of it
is sealed just before its INSERT or UPDATE and opened when the row is loaded. The
attributes hold plain text between flushes, so operations and views never see envelopes.
Bulk UPDATE statements and column selects (``select(Model.column)``) bypass this: load
whole rows to read a sealed column, and never set one with a bulk UPDATE.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, event, inspect
from sqlalchemy.orm import Mapper, Session, object_session
from sqlalchemy.orm.attributes import get_history, set_committed_value
from sqlalchemy.types import TypeDecorator

from kiosk.models.base import new_public_id
from kiosk.sealing import Keyring, SealError, keyring_of, open_text, seal_text

PLAIN_KEY = "sealed_plain"
# What a required sealed column holds once its content is removed (kiosk.retention).
REMOVED = ""


class SealedText(TypeDecorator[str]):
    """Text stored sealed; ``length`` is the longest plain value forms accept."""

    impl = Text
    cache_ok = True

    def __init__(self, length: int | None = None) -> None:
        super().__init__()
        self.length = length


def sealed_columns(model: type[Any]) -> tuple[str, ...]:
    """The attribute names of a model's sealed columns."""
    mapper = inspect(model)
    return tuple(
        prop.key for prop in mapper.column_attrs if isinstance(prop.columns[0].type, SealedText)
    )


def row_identity(target: Any) -> str:
    """The identity bound into each sealed value of this row (see kiosk.sealing)."""
    parts = [getattr(target, name) for name in type(target).__seal_identity__]
    if any(part is None for part in parts):
        return ""
    return "/".join(str(part) for part in parts)


def identity_of_row(model: type[Any], row: Any) -> str:
    """The same identity, from a Core row that has the identity columns."""
    return "/".join(str(getattr(row, name)) for name in model.__seal_identity__)


def _keyring(session: Session | None) -> Keyring:
    if session is None:
        raise SealError("a sealed row is being written outside a session")
    return keyring_of(session)


def _open_loaded(target: Any, session: Session | None, keys: Any) -> None:
    state = inspect(target)
    columns = [k for k in sealed_columns(type(target)) if keys is None or k in keys]
    loaded = [k for k in columns if k in state.dict and state.dict[k] is not None]
    if not loaded:
        return
    keyring = _keyring(session)
    table = target.__tablename__
    row = row_identity(target)
    for key in loaded:
        set_committed_value(target, key, open_text(keyring, state.dict[key], table, key, row))


def _seal_pending(target: Any, changed_only: bool) -> None:
    state = inspect(target)
    plain: dict[str, str] = {}
    keyring = None
    table = target.__tablename__
    row = ""
    for key in sealed_columns(type(target)):
        value = state.dict.get(key)
        # An empty value holds nothing to protect (a purged row's content): stored as is.
        if (
            value is None
            or value == REMOVED
            or (changed_only and not get_history(target, key).has_changes())
        ):
            continue
        if keyring is None:
            keyring = _keyring(object_session(target))
            row = row_identity(target)
        plain[key] = value
        setattr(target, key, seal_text(keyring, value, table, key, row))
    state.info[PLAIN_KEY] = plain


def _restore_plain(target: Any) -> None:
    for key, value in inspect(target).info.pop(PLAIN_KEY, {}).items():
        set_committed_value(target, key, value)


def register(model: type[Any]) -> type[Any]:
    """Seal and open the model's SealedText columns; use as a class decorator."""

    @event.listens_for(model, "load")
    def _on_load(target: Any, context: Any) -> None:
        _open_loaded(target, context.session, None)

    @event.listens_for(model, "refresh")
    def _on_refresh(target: Any, context: Any, keys: Any) -> None:
        _open_loaded(target, context.session, keys)

    @event.listens_for(model, "before_insert")
    def _before_insert(_mapper: Mapper[Any], _connection: Any, target: Any) -> None:
        if "public_id" in model.__seal_identity__ and target.public_id is None:
            target.public_id = new_public_id()
        _seal_pending(target, changed_only=False)

    @event.listens_for(model, "before_update")
    def _before_update(_mapper: Mapper[Any], _connection: Any, target: Any) -> None:
        _seal_pending(target, changed_only=True)

    @event.listens_for(model, "after_insert")
    @event.listens_for(model, "after_update")
    def _after_write(_mapper: Mapper[Any], _connection: Any, target: Any) -> None:
        _restore_plain(target)

    return model
