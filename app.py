"""WSGI entry: `gunicorn app:app`, `flask --app app ...`."""

from kiosk.startup import entry_app

app = entry_app()
