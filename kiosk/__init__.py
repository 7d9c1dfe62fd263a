"""School front-office protocol kiosk."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from kiosk import audit, cli, errors, health, sealing, security, templating, webdb
from kiosk.config import check_settings, load_settings, retired_settings


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Wire the app: settings, database, security, blueprints, CLI. Starts no threads."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = Flask(
        __name__,
        instance_path=os.environ.get("KIOSK_INSTANCE_PATH") or os.path.join(root, "instance"),
        static_folder=os.path.join(root, "static"),
        template_folder="templates",
    )
    settings = load_settings(dict(os.environ), app.instance_path)
    settings.update(overrides or {})
    check_settings(settings)
    app.config.update(settings)
    for line in retired_settings(dict(os.environ)):
        app.logger.warning("settings: %s", line)
    app.config.update(
        WTF_CSRF_TIME_LIMIT=24 * 3600,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["SECURE_COOKIES"],
        SESSION_COOKIE_NAME="kiosk_session",
        MAX_CONTENT_LENGTH=12 * 1024 * 1024,
    )

    webdb.Database(app.config["DATABASE_URL"], app.config["WRITE_LOCK_TIMEOUT_SECONDS"]).init_app(
        app
    )
    sealing.init_app(app)
    audit.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    health.init_app(app)
    templating.init_app(app)
    cli.init_app(app)

    from kiosk import admin, api, desk, ferpa, office, review
    from kiosk.auth import second_factor_views  # noqa: F401 - attaches its routes to auth_bp
    from kiosk.auth.views import bp as auth_bp
    from kiosk.auth.welcome import bp as welcome_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(welcome_bp)
    desk.init_app(app)
    office.init_app(app)
    review.init_app(app)
    ferpa.init_app(app)
    admin.init_app(app)
    api.init_app(app)
    return app
