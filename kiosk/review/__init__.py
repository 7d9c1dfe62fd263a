"""The district's review log: every encounter a reviewer may read, open or ended."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Importing the view module attaches its routes to the blueprint.
    from kiosk.review import (  # noqa: F401
        board_views,
        encounter,
        export,
        hold,
        report,
        stats_views,
        verified,
        views,
    )
    from kiosk.review.blueprint import bp

    app.register_blueprint(bp)
