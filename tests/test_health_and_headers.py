"""Health check, Content Security Policy and other headers."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import tap_start


def test_healthz_reports_database_and_pending_outbox(app: Flask, kiosk_client: FlaskClient) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert {k: body[k] for k in ("status", "database", "outbox_pending")} == {
        "status": "ok",
        "database": "ok",
        "outbox_pending": 0,
    }
    assert body["delivery_heartbeat_age_s"] is None and body["oldest_pending_age_s"] is None
    assert body["escalation_failures"] == 0  # see tests/notify/test_engine.py for one failing
    tap_start(kiosk_client)
    assert app.test_client().get("/healthz").get_json()["outbox_pending"] == 1


def test_strict_csp_and_no_inline_script_or_style(kiosk_client: FlaskClient) -> None:
    tap_start(kiosk_client)
    for path in (
        "/desk/",
        "/desk/agents",
        "/desk/request",
        "/desk/document",
        "/desk/exigency",
        "/desk/outcome",
        "/desk/close",
        "/desk/staff",
        "/desk/cover",
        "/login",
    ):
        response = kiosk_client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["Cache-Control"] == "no-store"
        body = response.get_data(as_text=True).lower()
        assert "<style" not in body and " style=" not in body
        assert "<script>" not in body
        for attribute in (" onclick=", " onload=", " onsubmit=", " onchange=", " oninput="):
            assert attribute not in body
        assert "http://" not in body.replace("http://kiosk.test", "") or "cdn" not in body


def test_forms_without_csrf_token_are_refused(kiosk_client: FlaskClient) -> None:
    tap_start(kiosk_client)
    response = kiosk_client.post("/desk/agents", data={"name": "A"})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
