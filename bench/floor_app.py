"""The floor for bench/alert_latency.py: bare Flask, one SQLite insert per request.

It answers the same four requests as the kiosk's start loop (idle page, start, close page,
close) with the same hidden inputs, so the very same client runs against it. Every request
does exactly one insert in its own transaction, with the app's SQLite settings (WAL,
synchronous=FULL, BEGIN IMMEDIATE, busy timeout): what one durable write per request costs
under the same gunicorn settings, and nothing else.

Served by `gunicorn -c bench/floor_gunicorn.conf.py bench.floor_app:app` (the repo's gunicorn
settings) with FLOOR_DATABASE=<file>.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time

from flask import Flask, redirect, request

DATABASE = os.environ.get("FLOOR_DATABASE", "floor.db")

app = Flask(__name__)
# gunicorn.conf.py starts in-process delivery per worker; the floor has none.
app.config["DELIVERY"] = "off"

_local = threading.local()

IDLE_PAGE = (
    '<!doctype html><title>Front office</title><form method="post" action="/desk/start">'
    '<input id="nonce" name="nonce" type="hidden" value="{nonce}">'
    '<input id="start_token" name="start_token" type="hidden" value="floor">'
    '<button type="submit">Notify district office</button></form>'
)
CLOSE_PAGE = (
    '<!doctype html><title>Finish</title><form method="post" action="/desk/close">'
    '<input id="csrf_token" name="csrf_token" type="hidden" value="{token}">'
    '<button type="submit">Finish</button></form>'
)


def _connection() -> sqlite3.Connection:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = sqlite3.connect(DATABASE, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA busy_timeout=30000")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, path TEXT NOT NULL, "
            "nonce TEXT, at REAL NOT NULL)"
        )
        _local.connection = connection
    return connection


def _insert(nonce: str | None = None) -> None:
    connection = _connection()
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            "INSERT INTO hits (path, nonce, at) VALUES (?, ?, ?)",
            (request.path, nonce, time.time()),
        )
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


@app.get("/desk/")
def home() -> str:
    _insert()
    return IDLE_PAGE.format(nonce=secrets.token_urlsafe(16))


@app.post("/desk/start")
def start():  # type: ignore[no-untyped-def]
    _insert(request.form.get("nonce", "")[:64])
    return redirect("/desk/")


@app.get("/desk/close")
def close_page() -> str:
    _insert()
    return CLOSE_PAGE.format(token=secrets.token_urlsafe(16))


@app.post("/desk/close")
def close():  # type: ignore[no-untyped-def]
    _insert()
    return redirect("/desk/")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
