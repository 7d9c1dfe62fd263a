"""Engine and sessions; no Flask here, so the worker and the domain can use it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

# True while the current unit of work will write: SQLite then takes the write lock at
# BEGIN (BEGIN IMMEDIATE) instead of failing midway; readers use plain BEGIN and never
# queue behind writers.
write_intent: ContextVar[bool] = ContextVar("write_intent", default=False)

AFTER_COMMIT_HOOKS = "after_commit_hooks"
# Outbox rows leased to this process's deliverer, handed over after the commit.
HANDOFF_KEY = "outbox_handoff"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, FULL sync, foreign keys and IMMEDIATE writes."""
    if url.startswith("sqlite"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", 30)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _prepare_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling is switched off so that BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write_intent.get() else "BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(engine, expire_on_commit=False)

    @event.listens_for(factory, "after_commit")
    def _run_after_commit(session: Session) -> None:
        hooks: list[Callable[[], None]] = session.info.pop(AFTER_COMMIT_HOOKS, [])
        for hook in hooks:
            hook()

    @event.listens_for(factory, "after_rollback")
    def _forget_hooks(session: Session) -> None:
        session.info.pop(AFTER_COMMIT_HOOKS, None)
        session.info.pop(HANDOFF_KEY, None)

    return factory


def after_commit(session: Session, hook: Callable[[], None]) -> None:
    """Run hook once the session's transaction has committed (never on rollback)."""
    hooks = session.info.setdefault(AFTER_COMMIT_HOOKS, [])
    if hook not in hooks:
        hooks.append(hook)


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Mark the enclosed unit of work as a writer (for CLI commands and workers)."""
    token = write_intent.set(True)
    try:
        yield
    finally:
        write_intent.reset(token)
