"""Local times for a school's time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str) -> ZoneInfo:
    """Return the zone, falling back to UTC for a name this machine does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name such as "America" is a folder of zones, not a zone.
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


def is_school_hours(school: object, moment: datetime) -> bool:
    """Say whether the moment falls in the school's hours, on one of its school days."""
    value = local(moment, getattr(school, "timezone", "UTC"))
    days = {int(d) for d in str(getattr(school, "school_days", "0,1,2,3,4")).split(",") if d}
    if value.weekday() not in days:
        return False
    now_hm = value.strftime("%H:%M")
    opens = getattr(school, "hours_open", "00:00") or "00:00"
    closes = getattr(school, "hours_close", "23:59") or "23:59"
    return opens <= now_hm < closes
