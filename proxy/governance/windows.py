"""Budget windows: when a day or a month starts and ends. Pure functions.

Windows follow the operator's time zone (UTC by default): a ``day`` budget
resets at local midnight, a ``month`` budget on the 1st at local midnight, a
``lifetime`` budget never (its window starts at the epoch).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Window = Literal["day", "month", "lifetime"]


def window_bounds(
    window: Window, now: float, tz: ZoneInfo | None = None
) -> tuple[float, float | None]:
    """Start (epoch seconds) of the window holding ``now``, and when the next one starts."""
    if window == "lifetime":
        return 0.0, None
    zone = tz or UTC
    local = datetime.fromtimestamp(now, zone)
    if window == "day":
        first = local.date()
        following = first + timedelta(days=1)
    else:
        first = local.date().replace(day=1)
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(following, time(0), tzinfo=zone)
    return start.timestamp(), end.timestamp()
