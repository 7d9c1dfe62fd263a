"""Template helpers: local times and the sign-out form."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, current_app

from kiosk.localtime import local


def init_app(app: Flask) -> None:
    app.add_template_filter(_local, "local")
    app.context_processor(_forms)


def _local(moment: datetime | None, zone_name: str) -> str:
    if moment is None:
        return ""
    return local(moment, zone_name).strftime("%Y-%m-%d %H:%M:%S %Z")


def _forms() -> dict[str, Any]:
    from kiosk.auth.forms import EmptyForm

    return {
        "logout_form": EmptyForm(formdata=None),
        "has_endpoint": lambda name: name in current_app.view_functions,
        "can_see_outbox": _can_see_outbox,
        "can_administer": _can_administer,
        "can_approve_scripts": _can_approve_scripts,
        "admin_sections": ADMIN_SECTIONS,
    }


# The administration pages, in the order the menu shows them; a section not built yet is
# left out of the menu (has_endpoint).
ADMIN_SECTIONS = (
    ("admin.schools", "Schools"),
    ("admin.people", "People"),
    ("admin.kiosks", "Kiosks"),
    ("admin.routing", "Alert routing"),
    ("admin.test_alerts", "Test alerts"),
    ("admin.scripts", "Scripts"),
    ("admin.api_tokens", "API tokens"),
)


def _can_administer() -> bool:
    from kiosk.auth.policy import ADMIN, current_user, may

    return may(current_user(), ADMIN)


def _can_approve_scripts() -> bool:
    from kiosk.auth.policy import current_user, may

    return may(current_user(), "script.approve")


def _can_see_outbox() -> bool:
    from kiosk.auth.policy import current_user, may

    return may(current_user(), "outbox.read")
