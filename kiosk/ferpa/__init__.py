"""FERPA records: named people matched to students, 99.32 request records, parent notices."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Importing the view module attaches its routes to the blueprint.
    from kiosk.ferpa import views  # noqa: F401
    from kiosk.ferpa.blueprint import bp

    app.register_blueprint(bp)
