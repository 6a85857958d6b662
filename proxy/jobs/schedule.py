"""When the watcher polls a job next, and how fast it may poll. Pure, on injected inputs.

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


_EPSILON = 1e-9


class TokenBucket:
    """A poll-rate limit: ``rate`` tokens a second, at most ``burst`` saved up.

    Pure bookkeeping on times passed in (monotonic seconds): ``take(now)`` spends a
    token and returns 0, or returns how long to wait before asking again.
    ``pause_until`` holds every token back until a time (an upstream 429's reset).
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = now
        self._paused_until = now

    def take(self, now: float) -> float:
        """Spend one token (0.0) or the seconds until one is available (nothing spent)."""
        if now < self._paused_until:
            return self._paused_until - now
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
        if self._tokens >= 1 - _EPSILON:  # float dust never leaves a wait too short to pass
            self._tokens = max(0.0, self._tokens - 1)
            return 0.0
        return (1 - self._tokens) / self.rate

    def pause_until(self, until: float) -> None:
        """No token before ``until``; none saved up meanwhile (the burst restarts empty)."""
        if until > self._paused_until:
            self._paused_until = until
            self._tokens = 0.0
            self._at = until
