"""A server process killed (SIGKILL) right after a tap committed, before its running deliverer
could take the alert it was handed. Run by tests/notify/test_engine.py as a subprocess:

    python tests/notify/tapped_worker.py SETTINGS_JSON DEVICE_SECRET
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from kiosk import create_app
from kiosk.auth.policy import DEVICE_COOKIE
from kiosk.db import HANDOFF_KEY
from kiosk.delivery import start_in_process
from kiosk.webdb import database
from tests.conftest import tap_start


def die_once_handed_over(session: Session) -> None:
    """Die the hardest way the moment a commit that handed rows over is done: before the
    handover reaches the deliverer, so the rows keep the lease they got at enqueue."""
    if session.info.get(HANDOFF_KEY):
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    settings: dict[str, Any] = json.loads(sys.argv[1])
    app = create_app({**settings, "DELIVERY": "inprocess"})
    deliverer = start_in_process(app)  # what gunicorn's post_worker_init does
    assert deliverer is not None
    deadline = time.monotonic() + 10
    while deliverer.rounds == 0:  # its first round: from now on taps are leased to it
        assert time.monotonic() < deadline, "the deliverer never ran a round"
        time.sleep(0.01)
    # Runs before the session's own after-commit hooks, which hand the rows over.
    event.listen(database(app).session_factory, "after_commit", die_once_handed_over, insert=True)
    client = app.test_client()
    client.set_cookie(DEVICE_COOKIE, sys.argv[2], domain="localhost")
    tap_start(client)
    sys.exit(3)  # not reached: the tap's commit kills the process


if __name__ == "__main__":
    main()
