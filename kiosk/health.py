"""Health for load balancers and people.

GET /livez: the process answers (no database). GET /readyz: the database answers and
delivery is not stalled (see kiosk/notify/health.py); 200 or 503, status only. GET /healthz:
the same verdict with the details (waiting counts, ages, each channel, contacts whose
messages wait), which only outbox staff and this machine see; anyone else gets the status.

GET /check: a device's self-check, for the person setting up or looking after a kiosk (and
readable by whoever stands at the counter): is this device set up, and for which school;
does the server answer (with a round trip measured from the page by /check.json); are
messages to the district office going out. Yes or no only: any device may ask, so no
counts, recipients or other schools.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, jsonify, render_template
from sqlalchemy import text
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.auth.policy import can_view_delivery_details, current_kiosk
from kiosk.clock import now_utc
from kiosk.notify.channels import senders_from_settings
from kiosk.notify.health import DeliveryState, alert_path_healthy, delivery_state
from kiosk.protocol.escalation import escalation_failures


def init_app(app: Flask) -> None:
    app.add_url_rule("/livez", "livez", livez)
    app.add_url_rule("/readyz", "readyz", readyz)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/check", "self_check", self_check)
    app.add_url_rule("/check.json", "self_check_json", self_check_json)


def livez() -> Response:
    return jsonify(status="ok")


def current_state() -> DeliveryState | None:
    """Delivery as this app sees it now; None if the database cannot be read."""
    session = webdb.session()
    try:
        session.execute(text("SELECT 1"))
        return delivery_state(
            session,
            now_utc(),
            float(current_app.config["DELIVERY_STALL_SECONDS"]),
            senders_from_settings(current_app.config),
        )
    except Exception as exc:  # the database is down: say so, with no details
        # The error's type only (probes repeat; database errors quote statements).
        current_app.logger.warning("health: the database cannot be read (%s)", type(exc).__name__)
        return None


def readyz() -> tuple[Response, int]:
    state = current_state()
    if state is None:
        return jsonify(status="error", database="error"), 503
    delivery = "stalled" if state.stalled else "ok"
    return jsonify(status=delivery, database="ok", delivery=delivery), 503 if state.stalled else 200


def healthz() -> tuple[Response, int]:
    state = current_state()
    if state is None:
        return jsonify(status="error", database="error"), 503
    status = "stalled" if state.stalled else "ok"
    code = 503 if state.stalled else 200
    try:
        detailed = can_view_delivery_details()
    except Exception:  # the user could not be read: no details
        detailed = False
    if not detailed:
        return jsonify(status=status), code
    return jsonify(details(state, status)), code


def details(state: DeliveryState, status: str) -> dict[str, Any]:
    return {
        "status": status,
        "database": "ok",
        "outbox_pending": state.waiting,
        "delivery_heartbeat_age_s": state.heartbeat_age_s,
        "oldest_pending_age_s": state.oldest_alert_age_s,
        "no_deliverer": state.no_deliverer,
        # Encounters whose escalation is failing, as seen by this process's deliverer.
        "escalation_failures": escalation_failures(),
        "channels": {
            name: {
                "sender": channel.sender,
                "waiting": channel.waiting,
                "waiting_alerts": channel.waiting_alerts,
                "oldest_alert_age_s": channel.oldest_alert_age_s,
                "stalled": channel.stalled,
                "problem_contacts": [p.contact_id for p in state.contacts if p.channel == name],
            }
            for name, channel in sorted(state.channels.items())
        },
        "contact_problems": [
            {
                "contact_id": p.contact_id,
                "channel": p.channel,
                "waiting": p.waiting,
                "oldest_age_s": p.oldest_age_s,
                "last_error": p.last_error,
            }
            for p in state.contacts
        ],
    }


def messages_going_out() -> bool | None:
    """Whether messages to the district office go out now; None if the database cannot be
    read (the page then says the server is not answering properly)."""
    session = webdb.session()
    try:
        return alert_path_healthy(
            session,
            now_utc(),
            float(current_app.config["DELIVERY_STALL_SECONDS"]),
            senders_from_settings(current_app.config),
        )
    except Exception as exc:
        current_app.logger.warning(
            "self-check: the database cannot be read (%s)", type(exc).__name__
        )
        return None


def self_check() -> str:
    kiosk = current_kiosk()
    return render_template(
        "self_check.html",
        kiosk=kiosk,
        withdrawn=bool(g.get("kiosk_withdrawn")),
        going_out=messages_going_out(),
        checked_at=now_utc(),
    )


def self_check_json() -> Response:
    """Small and uncached: the page times the round trip to it."""
    going_out = messages_going_out()
    response = jsonify(
        server="ok" if going_out is not None else "error",
        messages="ok" if going_out else "delayed",
        set_up=current_kiosk() is not None,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
