"""The watcher's polling cadence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.jobs.schedule import Cadence, first_poll_at, is_stale, next_poll_delay

CADENCE = Cadence()


def test_first_check_fifteen_seconds_after_submit() -> None:
    """Without jitter the first check is 15 s after submit."""
    assert first_poll_at(1000.0, CADENCE, 0.5) == 1015.0


def test_backoff_from_five_seconds_capped_at_thirty() -> None:
    """Delays double from 5 s and stop at 30 s."""
    assert [next_poll_delay(n, CADENCE, 0.5) for n in range(1, 7)] == [5, 10, 20, 30, 30, 30]


def test_stale_after_twelve_attempts_and_polled_at_the_cap() -> None:
    """From the 12th attempt a job is stale and polled at the cap."""
    assert not is_stale(11, CADENCE)
    assert is_stale(12, CADENCE)
    assert next_poll_delay(40, CADENCE, 0.5) == 30


@given(attempts=st.integers(1, 100), unit=st.floats(0, 1, exclude_max=True))
def test_jitter_is_about_twenty_percent(attempts: int, unit: float) -> None:
    """Every delay lies within ±20 % of its nominal value."""
    nominal = min(30.0, 5.0 * 2 ** (attempts - 1))
    delay = next_poll_delay(attempts, CADENCE, unit)
    assert 0.8 * nominal - 1e-9 <= delay <= 1.2 * nominal + 1e-9
