"""Alembic environment: the URL comes from the caller or from KIOSK_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import pool

from kiosk.config import load_settings
from kiosk.db import make_engine
from kiosk.models import Base, SealedText, UTCDateTime

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("url")
    if url:
        return url
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    instance = os.environ.get("KIOSK_INSTANCE_PATH") or os.path.join(root, "instance")
    os.makedirs(instance, exist_ok=True)
    return load_settings(dict(os.environ), instance)["DATABASE_URL"]


def render_item(kind: str, obj: object, autogen_context: object) -> str | bool:
    """Write our column types as plain SQLAlchemy types, so migrations stand alone."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, SealedText):
        return "sa.Text()"
    return False


def run_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations rebuild tables; SQLite would refuse to drop a table that others
            # reference while foreign keys are enforced. Switched off outside any transaction.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise RuntimeError(f"foreign keys broken by the migration: {problems[:5]}")
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
