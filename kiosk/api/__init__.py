"""The read-only JSON API, v1: encounters and their events, and FERPA request records, for
reviewers and counsel, with a bearer token per person, and the OpenAPI document that
describes it exactly."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

PREFIX = "/api/"


class NoCookieForApi(SecureCookieSessionInterface):
    """The API has no session: its answers never set, refresh or clear the session cookie,
    whatever cookie a client sends along with its token."""

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        if request.path.startswith(PREFIX):
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    # Importing the view module attaches its routes to the blueprint.
    from kiosk.api import ferpa, views  # noqa: F401
    from kiosk.api.blueprint import bp

    app.session_interface = NoCookieForApi()
    app.register_blueprint(bp)
