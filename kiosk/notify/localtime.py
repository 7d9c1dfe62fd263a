"""Local times for a school's time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str) -> ZoneInfo:
    """Return the zone, falling back to UTC for a name this machine does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local(moment: datetime, zone_name: str) -> datetime:
    return moment.astimezone(zone(zone_name))


def clock_time(moment: datetime, zone_name: str) -> str:
    """Format as HH:MM:SS in the school's zone."""
    return local(moment, zone_name).strftime("%H:%M:%S")


def long_time(moment: datetime, zone_name: str) -> str:
    """Format as 'Monday 2 March 2026, 10:02:03 EST' in the school's zone."""
    value = local(moment, zone_name)
    return f"{value:%A} {value.day} {value:%B %Y, %H:%M:%S %Z}"
