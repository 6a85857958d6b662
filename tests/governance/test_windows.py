"""Budget windows reset at local midnight and on the 1st of the month."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from proxy.governance.windows import window_bounds


def ts(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: ZoneInfo | None = None
) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=tz or UTC).timestamp()


def test_day_window_is_utc_midnight_to_midnight() -> None:
    """A day budget's window runs from 00:00 UTC to the next 00:00 UTC."""
    assert window_bounds("day", ts(2026, 11, 24, 15, 30)) == (ts(2026, 11, 24), ts(2026, 11, 25))


def test_month_window_and_year_end() -> None:
    """A month window runs from the 1st to the next 1st, across the year end."""
    assert window_bounds("month", ts(2026, 12, 31, 23, 59)) == (ts(2026, 12, 1), ts(2027, 1, 1))
    assert window_bounds("month", ts(2026, 2, 14)) == (ts(2026, 2, 1), ts(2026, 3, 1))


def test_lifetime_window_never_resets() -> None:
    """A lifetime budget has one window starting at the epoch."""
    assert window_bounds("lifetime", ts(2026, 11, 24)) == (0.0, None)


def test_operator_time_zone_and_dst() -> None:
    """In a zone with DST the day still starts at local midnight (a 23-hour day included)."""
    berlin = ZoneInfo("Europe/Berlin")
    start, end = window_bounds("day", ts(2026, 3, 29, 12, tz=berlin), berlin)
    assert start == ts(2026, 3, 29, tz=berlin)
    assert end == ts(2026, 3, 30, tz=berlin)
    assert end - start == 23 * 3600
