"""When a failed webhook delivery is tried again (pure)."""

from __future__ import annotations


def retry_delay(attempts: int, base: float, cap: float, jitter: float, draw: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones (``draw`` in [0, 1)).

    ``base * 2 ** (attempts - 1)``, capped at ``cap``, then spread by up to ``jitter``
    either way, so receivers coming back up are not hit by every delivery at once.
    """
    delay = min(cap, base * float(2 ** max(0, min(attempts - 1, 60))))
    return max(0.0, delay * (1 + jitter * (2 * draw - 1)))
