"""The district office: open encounters and each encounter's record (sign-in required)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Importing the view modules attaches their routes to the blueprint.
    from kiosk.office import actions, outbox, photos, views  # noqa: F401
    from kiosk.office.blueprint import bp

    app.register_blueprint(bp)
