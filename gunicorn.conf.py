"""gunicorn settings: gthread workers, and one lease-based deliverer per worker."""

import os

from kiosk.startup import stop_unless_configured, whole_number

bind = os.environ.get("KIOSK_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = whole_number("KIOSK_WORKERS", 2)
# Four threads per worker: enough for polling pages (idle keep-alive connections hold no
# thread), and few enough that a writer holding the database is not starved of the GIL.
threads = whole_number("KIOSK_THREADS", 4)
timeout = 60
graceful_timeout = 10
accesslog = os.environ.get("KIOSK_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("KIOSK_LOG_LEVEL", "info")
# Access logs are off unless asked for; when on, the tokens of /ack/ and /enroll/ links are
# redacted. KIOSK_LOG_FORMAT=json makes every line (gunicorn's and the app's) one JSON object.
logger_class = "kiosk.logs.GunicornLogger"


def on_starting(server):
    """Check the settings in the master, so wrong ones stop gunicorn at once."""
    stop_unless_configured(server.log)


def post_worker_init(worker):
    """Start delivery in this worker once the app is loaded (create_app starts no threads)."""
    from kiosk.delivery import start_in_process

    start_in_process(worker.wsgi)


def worker_exit(server, worker):
    from kiosk.delivery import stop_in_process

    stop_in_process()


# Several servers may run on one machine (tests, benchmarks); none needs gunicorn's
# runtime control socket.
control_socket_disable = True
