"""In-process delivery: one deliverer thread per server process, when KIOSK_DELIVERY=inprocess."""

from __future__ import annotations

from flask import Flask

from kiosk.notify.channels import senders_from_settings
from kiosk.notify.links import Links
from kiosk.notify.worker import Deliverer, policy_from_settings
from kiosk.webdb import database

_deliverer: Deliverer | None = None


def start(app: Flask) -> Deliverer | None:
    global _deliverer
    if app.config["DELIVERY"] != "inprocess" or _deliverer is not None:
        return _deliverer
    _deliverer = Deliverer(
        database(app).session_factory,
        senders_from_settings(app.config),
        policy=policy_from_settings(app.config),
        links=Links.from_settings(app.config),
    )
    _deliverer.start()
    return _deliverer


def stop() -> None:
    global _deliverer
    if _deliverer is not None:
        _deliverer.stop()
        _deliverer = None


def current() -> Deliverer | None:
    return _deliverer
