"""Team limits: concurrent tasks and requests per minute, fixed or by funding tier.

Modellix's limits are team-wide and follow the team's funding tier (its total
top-ups): below $10, 2 concurrent tasks and 100 requests/minute; from $1,000, 100 and
1,000 (the two ends are Modellix's figures; the steps between, and their thresholds,
are the simulator's: ``config.DEFAULT_TIERS``, configurable as ``tiers``). Kling's model
endpoints have their own 100 requests/minute.

``SimulatorConfig.tier``:

- ``None`` (default): ``concurrency_limit`` (3) and ``rpm_limit`` (0: unlimited) for
  every team, Kling unlimited unless ``kling_rpm_limit`` is set: what tests always had;
- ``"auto"``: each team's tier from its top-ups (``topups_usd``, else
  ``initial_balance_usd``; ``Simulator.top_up`` adds to both balance and top-ups);
- ``0``..``len(tiers)-1``: every team at that tier.

With a tier in force, an explicitly set ``concurrency_limit`` or ``rpm_limit`` still
wins, and Kling gets ``kling_rpm_limit`` (default 100).

RPM windows are fixed, per team, aligned to the minute: ``X-RateLimit-Reset`` is the
next minute boundary (Unix seconds). Only accepted requests use the window up.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from proxy.simulator.config import SimulatorConfig, Tier

WINDOW_SECONDS = 60
KLING_RPM = 100


@dataclass(frozen=True, slots=True)
class TeamLimits:
    """What one team may do now; 0 means unlimited."""

    concurrency: int
    rpm: int
    kling_rpm: int
    tier: int | None = None

    def as_json(self) -> dict[str, int | None]:
        return {
            "tier": self.tier,
            "concurrency": self.concurrency,
            "rpm": self.rpm,
            "kling_rpm": self.kling_rpm,
        }


def tier_index(tiers: tuple[Tier, ...], topups_usd: Decimal) -> int:
    """The highest tier whose threshold ``topups_usd`` reaches (0 if none)."""
    index = 0
    for i, tier in enumerate(tiers):
        if topups_usd >= tier.min_topup_usd:
            index = i
    return index


def team_limits(config: SimulatorConfig, topups_usd: Decimal) -> TeamLimits:
    """A team's limits under ``config`` with ``topups_usd`` of top-ups."""
    if config.tier is None:
        return TeamLimits(config.concurrency_limit, config.rpm_limit, config.kling_rpm_limit or 0)
    index = tier_index(config.tiers, topups_usd) if config.tier == "auto" else config.tier
    tier = config.tiers[index]
    explicit = config.model_fields_set
    concurrency = config.concurrency_limit if "concurrency_limit" in explicit else tier.concurrency
    rpm = config.rpm_limit if "rpm_limit" in explicit else tier.rpm
    kling = KLING_RPM if config.kling_rpm_limit is None else config.kling_rpm_limit
    return TeamLimits(concurrency, rpm, kling, index)


@dataclass(frozen=True, slots=True)
class WindowState:
    """One request against a window: allowed or not, and the headers that say so."""

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateWindows:
    """Fixed one-minute request windows, by key (a team, or a team's Kling bucket)."""

    def __init__(self) -> None:
        self._used: dict[str, tuple[int, int]] = {}

    def take(self, key: str, limit: int, now: float) -> WindowState:
        """Use one request of ``key``'s window if ``limit`` allows it."""
        minute = int(now // WINDOW_SECONDS)
        reset = (minute + 1) * WINDOW_SECONDS
        start, used = self._used.get(key, (minute, 0))
        if start != minute:
            used = 0
        allowed = used < limit
        if allowed:
            used += 1
        self._used[key] = (minute, used)
        return WindowState(allowed, limit, max(0, limit - used), reset)
