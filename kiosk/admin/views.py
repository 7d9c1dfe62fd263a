"""The administration home page: where each part of the district's setup is kept."""

from __future__ import annotations

from flask import render_template

from kiosk.admin.blueprint import bp
from kiosk.auth.policy import ADMIN, requires


@bp.get("/")
@requires(ADMIN)
def home() -> str:
    return render_template("admin/home.html")
