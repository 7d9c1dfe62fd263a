"""The desk blueprint; only an enrolled kiosk reaches any of its pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from kiosk.auth.policy import current_kiosk, not_a_kiosk

bp = Blueprint("desk", __name__, url_prefix="/desk")


@bp.before_request
def _require_kiosk() -> Any:
    if request.endpoint == "desk.cover":
        return None
    if current_kiosk() is None:
        return not_a_kiosk()
    return None
