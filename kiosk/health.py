"""GET /healthz: is the database reachable, and is delivery keeping up with the alerts."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, jsonify
from sqlalchemy import func, select, text

from kiosk import webdb
from kiosk.clock import now_utc
from kiosk.models import OutboxMessage, WorkerHeartbeat
from kiosk.notify.outbox import ALERT_KINDS
from kiosk.protocol.escalation import escalation_failures

WAITING = ("pending", "sending")


def init_app(app: Flask) -> None:
    app.add_url_rule("/healthz", "healthz", healthz)


def _age(now: datetime, moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return round(max((now - moment).total_seconds(), 0.0), 1)


def healthz():  # type: ignore[no-untyped-def]
    session = webdb.session()
    try:
        session.execute(text("SELECT 1"))
        pending = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status.in_(WAITING))
        )
        newest_beat = session.scalar(select(func.max(WorkerHeartbeat.beat_at)))
        oldest_alert = session.scalar(
            select(func.min(OutboxMessage.created_at)).where(
                OutboxMessage.status.in_(WAITING), OutboxMessage.kind.in_(ALERT_KINDS)
            )
        )
    except Exception:  # the database is down: say so, with no details
        return jsonify(status="error", database="error"), 503
    now = now_utc()
    heartbeat_age = _age(now, newest_beat)
    oldest_age = _age(now, oldest_alert)
    limit = float(current_app.config["DELIVERY_STALL_SECONDS"])
    # Stalled: alerts wait, and no deliverer has finished a round lately or one waits too long.
    stalled = oldest_age is not None and (
        heartbeat_age is None or heartbeat_age > limit or oldest_age > limit
    )
    body = {
        "status": "stalled" if stalled else "ok",
        "database": "ok",
        "outbox_pending": int(pending or 0),
        "delivery_heartbeat_age_s": heartbeat_age,
        "oldest_pending_age_s": oldest_age,
        # Encounters whose escalation is failing, as seen by this process's deliverer.
        "escalation_failures": escalation_failures(),
    }
    return jsonify(body), 503 if stalled else 200
