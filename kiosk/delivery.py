"""Wire delivery to the domain: the hooks the delivery engine calls, and deliverers built
with them.

notify/ carries messages and decides nothing; what delivery means for an encounter
(escalate it when nobody acknowledged, and at once when its alert failed for good) is the
domain's (kiosk/protocol/escalation.py). This is the one place that joins the two: every
deliverer (gunicorn's in-process one, `flask --app app outbox run`, the tests') gets its
hooks here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask

from kiosk.notify import inprocess
from kiosk.notify.channels import senders_from_settings
from kiosk.notify.deliverer import Deliverer
from kiosk.notify.links import Links
from kiosk.notify.sending import policy_from_settings
from kiosk.notify.worker import Hooks
from kiosk.protocol import checkins, escalation
from kiosk.webdb import database

log = logging.getLogger(__name__)

# Quiet kiosks are looked for at most this often per process (the escalation round runs
# every second).
CHECKIN_ROUND_EVERY = timedelta(minutes=1)


class Every:
    """Run `work` at most once per `period` of the times it is given (a round's `now`)."""

    def __init__(self, period: timedelta, work: Callable[[datetime], int]) -> None:
        self.period = period
        self.work = work
        self._last: datetime | None = None
        self._lock = threading.Lock()

    def __call__(self, now: datetime) -> int:
        with self._lock:
            if self._last is not None and self._last <= now < self._last + self.period:
                return 0
            self._last = now
        try:
            return self.work(now)
        except Exception as exc:  # never in the way of escalation
            log.error("kiosk check-in round failed (%s)", type(exc).__name__)
            return 0


def hooks_for(app: Flask) -> Hooks:
    """The domain's escalation round (and, beside it, the round that reports kiosks gone
    quiet) and its rule for an alert that fails for good."""
    session_factory = database(app).session_factory
    links = Links.from_settings(app.config)
    base_url = str(app.config["BASE_URL"])
    minutes = int(app.config["CHECKIN_ALERT_MINUTES"])
    quiet_kiosks = Every(
        CHECKIN_ROUND_EVERY,
        lambda now: checkins.alert_silent_kiosks(session_factory, base_url, now, minutes),
    )

    def escalate(now: datetime) -> int:
        escalated = escalation.escalate_due(session_factory, links, now)
        quiet_kiosks(now)
        return escalated

    return Hooks(escalate=escalate, alert_failed=escalation.alert_failed)


def deliverer_for(app: Flask) -> Deliverer:
    """A background deliverer for the app's database, senders and retry policy."""
    return Deliverer(
        database(app).session_factory,
        senders_from_settings(app.config),
        policy=policy_from_settings(app.config),
        hooks=hooks_for(app),
    )


def start_in_process(app: Flask) -> Deliverer | None:
    """Start this server process's deliverer when in-process delivery is on (gunicorn's
    post_worker_init; create_app() starts no threads)."""
    return inprocess.start(app, deliverer_for)


def stop_in_process() -> None:
    inprocess.stop()
