"""The one time source. Tests and subprocesses can shift it with KIOSK_CLOCK_OFFSET_SECONDS."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

_offset = timedelta(seconds=float(os.environ.get("KIOSK_CLOCK_OFFSET_SECONDS") or 0))


def now_utc() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC) + _offset


def set_offset(seconds: float) -> None:
    """Shift the clock (tests only: escalation and expiry without real waits)."""
    global _offset
    _offset = timedelta(seconds=seconds)


def offset_seconds() -> float:
    """Return the current shift, so a test can hand it to a subprocess."""
    return _offset.total_seconds()
