"""A throwaway instance of the app: the caller's environment, the app's settings, its setup."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .base import BIN
from .processes import run_cli

MAIL_DOMAIN = "district.test"
MAIL_FROM = f"alerts@{MAIL_DOMAIN}"
# What every benchmark passes on to gunicorn from the caller's environment.
PASSED_SETTINGS = ("KIOSK_WORKERS", "KIOSK_THREADS", "KIOSK_LOG_LEVEL")


def caller_environment(passed: Iterable[str] = PASSED_SETTINGS) -> dict[str, str]:
    """This process's environment without FLASK_APP and any KIOSK_* setting not passed on."""
    keep = set(passed)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_") or k in keep}
    env.pop("FLASK_APP", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def app_settings(
    base: dict[str, str],
    tmp: Path,
    app_port: int,
    smtp_port: int,
    smtp_timeout: str | None = None,
) -> dict[str, str]:
    """The app on 127.0.0.1:app_port, its instance and SQLite file (kiosk.db) in tmp, mailing
    through the SMTP server on 127.0.0.1:smtp_port without STARTTLS."""
    env = {
        **base,
        "KIOSK_INSTANCE_PATH": str(tmp / "instance"),
        "KIOSK_DATABASE_URL": f"sqlite:///{tmp / 'kiosk.db'}",
        "KIOSK_DEMO": "1",
        "KIOSK_BASE_URL": f"http://127.0.0.1:{app_port}",
        "KIOSK_SMTP_HOST": "127.0.0.1",
        "KIOSK_SMTP_PORT": str(smtp_port),
        "KIOSK_SMTP_STARTTLS": "0",
        "KIOSK_MAIL_FROM": MAIL_FROM,
        "PORT": str(app_port),
    }
    if smtp_timeout is not None:
        env["KIOSK_SMTP_TIMEOUT"] = smtp_timeout
    return env


def prepare_instance(env: dict[str, str]) -> None:
    """Keys (`python -m kiosk.keys`) and the schema (`flask --app app db upgrade`)."""
    run_cli([str(BIN / "python"), "-m", "kiosk.keys"], env)
    run_cli([str(BIN / "flask"), "--app", "app", "db", "upgrade"], env)
