"""Administration in the browser: schools, people, kiosks, routing, test alerts, scripts.

Every page here asks the policy (kiosk.auth.policy) and records each change it makes
(kiosk.admin.changes). The rules themselves live in kiosk.protocol.setup, shared with the
command line."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Importing the view modules attaches their routes to the blueprint.
    from kiosk.admin import (  # noqa: F401
        api_tokens,
        kiosks,
        people,
        routing,
        schools,
        scripts,
        test_alerts,
        views,
    )
    from kiosk.admin.blueprint import bp

    app.register_blueprint(bp)
