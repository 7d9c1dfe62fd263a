"""The request's database session: opened on first use, rolled back and closed at teardown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session

from kiosk.db import make_engine, make_session_factory, write_intent, write_urgent

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Database:
    """Binds one engine and session factory to a Flask app."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.session_factory = make_session_factory(self.engine)

    def init_app(self, app: Flask) -> None:
        app.extensions["kiosk_db"] = self
        app.before_request(_mark_write_intent)
        app.teardown_appcontext(_close_session)


F = TypeVar("F", bound=Callable[..., Any])


def urgent_write(view: F) -> F:
    """Let this view's write go ahead of other writers waiting for the database."""
    view.urgent_write = True  # type: ignore[attr-defined]
    return view


def _mark_write_intent() -> None:
    g._write_token = write_intent.set(request.method not in SAFE_METHODS)
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "urgent_write", False):
        g._urgent_token = write_urgent.set(True)


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("_db_session", None)
    if session is not None:
        session.rollback()
        session.close()
    token = g.pop("_write_token", None)
    if token is not None:
        write_intent.reset(token)
    urgent = g.pop("_urgent_token", None)
    if urgent is not None:
        write_urgent.reset(urgent)


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["kiosk_db"]


def session() -> Session:
    """Return the request's session, opened on first use."""
    if "_db_session" not in g:
        g._db_session = database().session_factory()
    return g._db_session
