"""Plain, calm error pages."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from kiosk.security import CROSS_SITE, log_refused_form


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)


def _csrf_error(error: CSRFError) -> tuple[str, int]:
    log_refused_form(error)
    message = "This page had expired. Go back, and send it again."
    if error.description == CROSS_SITE:
        message = "This form was not sent from this site's own page. Open the page again here."
    return render_template("error.html", title="Please try again", message=message), 400


def _http_error(error: HTTPException) -> Any:
    if request.path.startswith("/api/"):
        # The API answers in JSON, even at an address it does not have.
        code = error.code or 500
        return jsonify(error=error.name.lower().replace(" ", "_"), message=error.name), code
    messages = {
        403: "You do not have access to this page.",
        404: "There is nothing at this address.",
        405: "This address does not take that kind of request.",
        413: "That upload is too large.",
    }
    code = error.code or 500
    return (
        render_template(
            "error.html",
            title=error.name,
            message=messages.get(code, "Something went wrong. Please try again."),
        ),
        code,
    )
