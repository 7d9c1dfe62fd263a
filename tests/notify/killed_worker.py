"""A delivery worker that dies (SIGKILL) after the SMTP server accepted a message, before the
row is marked sent. Run by tests/notify/test_faults.py as a subprocess:

    python tests/notify/killed_worker.py SETTINGS_JSON NOW_ISO
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import datetime

from kiosk import create_app
from kiosk.delivery import hooks_for
from kiosk.notify.channels import Outgoing, Sender, senders_from_settings
from kiosk.notify.worker import deliver_due
from kiosk.webdb import database


class DieAfterSend:
    """Send for real, then die the hardest way: no cleanup, no mark_sent."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self.name = inner.name

    def send(self, message: Outgoing) -> None:
        self.inner.send(message)
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    settings = json.loads(sys.argv[1])
    now = datetime.fromisoformat(sys.argv[2])
    app = create_app(settings)
    senders = senders_from_settings(app.config)
    senders["email"] = DieAfterSend(senders["email"])
    # One at a time, so exactly one message is between "accepted" and "marked sent".
    deliver_due(database(app).session_factory, senders, now, hooks=hooks_for(app), parallel=1)
    sys.exit(3)  # not reached: the first accepted message kills the process


if __name__ == "__main__":
    main()
