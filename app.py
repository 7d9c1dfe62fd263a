"""WSGI entry: `gunicorn app:app`, `flask --app app ...`."""

from kiosk import create_app

app = create_app()
