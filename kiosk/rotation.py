"""Re-seal every sealed value under the current key, a batch per unit of work.

No Flask here. The job is stateless: each pass looks for values not yet on the current
key (values sealed under an older key, and plain values written before sealing existed),
so a job stopped at any point resumes by running again. Each batch is one short unit of
work, so the app keeps answering between batches. A value the app changes while the job
runs is not overwritten: the UPDATE holds only if the row still has the values read.

Photos kept as files before photos moved into the database are sealed into their rows
too; each file is removed once its row has committed.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, literal, not_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from kiosk import audit
from kiosk.db import unit_of_work
from kiosk.models import (
    Agent,
    DeskMessage,
    Document,
    Encounter,
    LateAddition,
    NamedPerson,
    Photo,
    User,
)
from kiosk.models.sealed import REMOVED, identity_of_row, sealed_columns
from kiosk.photos import PhotoUnavailable, legacy_path, read_legacy_file
from kiosk.sealing import (
    BYTES_PREFIX,
    PREFIX,
    Keyring,
    blind_index,
    bytes_key_id,
    is_sealed,
    key_id_of,
    open_bytes,
    open_text,
    seal_bytes,
    seal_text,
)

SEALED_MODELS: tuple[type[Any], ...] = (
    Encounter,
    Agent,
    NamedPerson,
    Document,
    DeskMessage,
    LateAddition,
    User,  # the second factor's secret
)
PLAIN = "(not sealed)"


@dataclass
class Progress:
    batches: int = 0
    rows: int = 0
    done: bool = False


def _behind(model: type[Any], keyring: Keyring) -> Any:
    """SQL: the row has a sealed column that is not on the current key."""
    prefix = f"{PREFIX}{keyring.current}:"
    table = model.__table__
    return or_(
        *(
            and_(
                table.c[key].is_not(None),
                table.c[key] != REMOVED,
                not_(table.c[key].startswith(prefix, autoescape=True)),
            )
            for key in sealed_columns(model)
        )
    )


def _photo_behind(keyring: Keyring) -> Any:
    prefix = BYTES_PREFIX + keyring.current.encode("ascii") + b":"
    content = Photo.__table__.c.content
    legacy = and_(content.is_(None), Photo.__table__.c.stored_name.is_not(None))
    return or_(legacy, func.substr(content, 1, len(prefix)) != literal(prefix))


def _reseal_rows(
    session: Session, model: type[Any], keyring: Keyring, index_key: str, rows: Any
) -> int:
    table = model.__table__
    keys = sealed_columns(model)
    changed = 0
    resealed: dict[int, str] = {}
    for row in rows:
        identity = identity_of_row(model, row)
        values: dict[str, Any] = {}
        for key in keys:
            stored = getattr(row, key)
            if stored is None or stored == REMOVED or key_id_of(stored) == keyring.current:
                continue
            plain = open_text(keyring, stored, table.name, key, identity)
            values[key] = seal_text(keyring, plain, table.name, key, identity)
            if model is NamedPerson and key == "name":
                values["name_index"] = blind_index(index_key, plain)
        if not values:
            continue
        unchanged = [table.c[key] == getattr(row, key) for key in values if key in keys]
        result = session.execute(
            update(table).where(table.c.id == row.id, *unchanged).values(**values)
        )
        if result.rowcount:
            resealed[row.id] = "update"
        changed += result.rowcount or 0
    if resealed and table.name in audit.COVERED_TABLES:
        # The ciphertext is part of each row's digest: chain the rows rewritten.
        audit.record_rows(session, table.name, resealed, actor="cli")
    return changed


def _batch(
    factory: sessionmaker[Session],
    model: type[Any],
    keyring: Keyring,
    index_key: str,
    after_id: int,
    size: int,
) -> tuple[int, int | None]:
    """Re-seal one batch; return rows changed and the last id seen (None when none left)."""
    table = model.__table__
    columns = [table.c.id, *(table.c[k] for k in model.__seal_identity__)]
    columns += [table.c[k] for k in sealed_columns(model)]
    with unit_of_work(factory) as session:
        rows = session.execute(
            select(*columns)
            .where(table.c.id > after_id, _behind(model, keyring))
            .order_by(table.c.id)
            .limit(size)
        ).all()
        if not rows:
            return 0, None
        return _reseal_rows(session, model, keyring, index_key, rows), rows[-1].id


def _photo_batch(
    factory: sessionmaker[Session], keyring: Keyring, photo_dir: str, after_id: int, size: int
) -> tuple[int, int | None]:
    table = Photo.__table__
    moved: list[str] = []
    with unit_of_work(factory) as session:
        rows = session.execute(
            select(table.c.id, table.c.public_id, table.c.stored_name, table.c.content)
            .where(table.c.id > after_id, _photo_behind(keyring))
            .order_by(table.c.id)
            .limit(size)
        ).all()
        if not rows:
            return 0, None
        changed = 0
        for row in rows:
            if row.content is not None:
                image = open_bytes(keyring, row.content, "photos", "content", row.public_id)
                condition = table.c.content == row.content
            else:
                try:
                    image = read_legacy_file(Photo(stored_name=row.stored_name), photo_dir)
                except PhotoUnavailable:
                    continue  # a missing file stays reported as missing
                condition = table.c.content.is_(None)
                moved.append(row.stored_name)
            sealed = seal_bytes(keyring, image, "photos", "content", row.public_id)
            result = session.execute(
                update(table)
                .where(table.c.id == row.id, condition)
                .values(content=sealed, stored_name=None)
            )
            changed += result.rowcount or 0
    for name in moved:
        with contextlib.suppress(OSError, PhotoUnavailable):
            os.unlink(legacy_path(photo_dir, name))
    return changed, rows[-1].id


def _batches(
    factory: sessionmaker[Session], keyring: Keyring, index_key: str, photo_dir: str, size: int
) -> Iterator[int]:
    for model in SEALED_MODELS:
        after = 0
        while True:
            changed, last = _batch(factory, model, keyring, index_key, after, size)
            if last is None:
                break
            after = last
            yield changed
    after = 0
    while True:
        changed, last = _photo_batch(factory, keyring, photo_dir, after, max(1, size // 20))
        if last is None:
            break
        after = last
        yield changed


def reseal(
    factory: sessionmaker[Session],
    keyring: Keyring,
    index_key: str,
    photo_dir: str,
    *,
    batch_size: int = 200,
    max_batches: int | None = None,
) -> Progress:
    """Move every sealed value onto the current key; stop after max_batches if given."""
    progress = Progress()
    for changed in _batches(factory, keyring, index_key, photo_dir, batch_size):
        progress.batches += 1
        progress.rows += changed
        if max_batches is not None and progress.batches >= max_batches:
            with factory() as session:
                progress.done = not any(k != keyring.current for k in keys_in_use(session))
            return progress
    progress.done = True
    return progress


def keys_in_use(session: Session) -> Counter[str]:
    """How many stored values each key seals (PLAIN for values not sealed yet)."""
    counts: Counter[str] = Counter()
    for model in SEALED_MODELS:
        table = model.__table__
        for key in sealed_columns(model):
            column = table.c[key]
            # A purged row's emptied value needs no key (kiosk.retention).
            stored = select(column).where(column.is_not(None), column != REMOVED)
            for (value,) in session.execute(stored):
                counts[key_id_of(value) if is_sealed(value) else PLAIN] += 1
    photos = Photo.__table__
    head = func.substr(photos.c.content, 1, 40)
    for content, stored_name in session.execute(select(head, photos.c.stored_name)):
        if content is not None:
            counts[bytes_key_id(content) or PLAIN] += 1
        elif stored_name is not None:
            counts[PLAIN] += 1
    return counts
