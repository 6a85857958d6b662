"""A clock tests can move by hand."""

from __future__ import annotations


class ManualClock:
    """A callable clock returning a time that only changes when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self.now += seconds
        return self.now
