"""GET /healthz: is the database reachable, and how many messages wait to be delivered."""

from __future__ import annotations

from flask import Flask, jsonify
from sqlalchemy import func, select, text

from kiosk import webdb
from kiosk.models import OutboxMessage


def init_app(app: Flask) -> None:
    app.add_url_rule("/healthz", "healthz", healthz)


def healthz():  # type: ignore[no-untyped-def]
    session = webdb.session()
    try:
        session.execute(text("SELECT 1"))
        pending = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status.in_(["pending", "sending"]))
        )
    except Exception:  # the database is down: say so, with no details
        return jsonify(status="error", database="error"), 503
    return jsonify(status="ok", database="ok", outbox_pending=int(pending or 0))
