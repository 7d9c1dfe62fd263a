"""In-process delivery: one deliverer thread per server process, when KIOSK_DELIVERY=inprocess.

The deliverer is built by the caller (kiosk/delivery.py), which wires in the domain's hooks.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from kiosk.notify.deliverer import Deliverer

_deliverer: Deliverer | None = None


def start(app: Flask, build: Callable[[Flask], Deliverer]) -> Deliverer | None:
    """Build this process's deliverer with `build` and start it (once, and only if on)."""
    global _deliverer
    if app.config["DELIVERY"] != "inprocess" or _deliverer is not None:
        return _deliverer
    _deliverer = build(app)
    _deliverer.start()
    return _deliverer


def stop() -> None:
    global _deliverer
    if _deliverer is not None:
        _deliverer.stop()
        _deliverer = None


def current() -> Deliverer | None:
    return _deliverer
