"""Wire delivery to the domain: the hooks the delivery engine calls, and deliverers built
with them.

notify/ carries messages and decides nothing; what delivery means for an encounter
(escalate it when nobody acknowledged, and at once when its alert failed for good) is the
domain's (kiosk/protocol/escalation.py). This is the one place that joins the two: every
deliverer (gunicorn's in-process one, `flask --app app outbox run`, the tests') gets its
hooks here.
"""

from __future__ import annotations

from flask import Flask

from kiosk.notify import inprocess
from kiosk.notify.channels import senders_from_settings
from kiosk.notify.deliverer import Deliverer
from kiosk.notify.links import Links
from kiosk.notify.sending import policy_from_settings
from kiosk.notify.worker import Hooks
from kiosk.protocol import escalation
from kiosk.webdb import database


def hooks_for(app: Flask) -> Hooks:
    """The domain's escalation round and its rule for an alert that fails for good."""
    session_factory = database(app).session_factory
    links = Links.from_settings(app.config)
    return Hooks(
        escalate=lambda now: escalation.escalate_due(session_factory, links, now),
        alert_failed=escalation.alert_failed,
    )


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
