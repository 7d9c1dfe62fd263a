"""The kiosk at a school's front desk."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Importing the view modules attaches their routes to the blueprint.
    from kiosk.desk import capture, photos, views  # noqa: F401
    from kiosk.desk.blueprint import bp

    app.register_blueprint(bp)
