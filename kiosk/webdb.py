"""The request's database sessions: one for reading, opened on first use and rolled back at
teardown, and short units of work for writing (`unit_of_work()`), each committed once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from kiosk import db as database_module
from kiosk.db import WRITE_LOCK_TIMEOUT_SECONDS, make_engine, make_session_factory


class Database:
    """Binds one engine and session factory to a Flask app."""

    def __init__(self, url: str, lock_timeout: float = WRITE_LOCK_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.engine = make_engine(url, lock_timeout=lock_timeout)
        self.session_factory = make_session_factory(self.engine)

    def init_app(self, app: Flask) -> None:
        app.extensions["kiosk_db"] = self
        app.teardown_appcontext(_close_session)


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("_db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["kiosk_db"]


def session() -> Session:
    """Return the request's reading session, opened on first use.

    It never takes the write lock: a request writes only inside `unit_of_work()`.
    """
    if "_db_session" not in g:
        g._db_session = database().session_factory()
    return g._db_session


@contextlib.contextmanager
def unit_of_work(*, urgent: bool = False) -> Iterator[Session]:
    """The request's one write: lock the row acted on, run one operation, commit once.

    Nothing slow belongs inside (hashing, image work, rendering, network): do it before,
    or after the block. The tap passes urgent=True so it goes ahead of other writers.
    """
    with database_module.unit_of_work(database().session_factory, urgent=urgent) as work:
        yield work
