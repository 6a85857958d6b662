"""When the watcher polls a job next. Pure functions with an injected random unit.

The cadence users were told to use: first check 15 s after submit, then
exponential backoff from 5 s capped at 30 s, about 20 % jitter; after 12
attempts a job is flagged stale and polled at the cap until terminal or expiry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cadence:
    first_check: float = 15.0
    base: float = 5.0
    cap: float = 30.0
    jitter: float = 0.2
    stale_after: int = 12


def _jittered(nominal: float, jitter: float, unit: float) -> float:
    return max(0.0, nominal * (1 + jitter * (2 * unit - 1)))


def first_poll_at(submitted_at: float, cadence: Cadence, unit: float) -> float:
    """Epoch seconds of the watcher's first look at a new job."""
    return submitted_at + _jittered(cadence.first_check, cadence.jitter, unit)


def next_poll_delay(attempts: int, cadence: Cadence, unit: float) -> float:
    """Seconds until the next poll after ``attempts`` watcher polls (1-based)."""
    if attempts >= cadence.stale_after:
        return _jittered(cadence.cap, cadence.jitter, unit)
    nominal = min(cadence.cap, cadence.base * 2 ** max(0, attempts - 1))
    return min(cadence.cap * (1 + cadence.jitter), _jittered(nominal, cadence.jitter, unit))


def is_stale(attempts: int, cadence: Cadence) -> bool:
    return attempts >= cadence.stale_after
