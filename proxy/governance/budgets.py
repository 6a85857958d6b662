"""Budgets: which apply to a caller, their current windows, and why one refuses.

Definitions live in the store (the config file's budgets are upserted at
start-up, the admin API adds and changes others) and are re-read at most every
``governance.cache_seconds``. Money is reserved per budget in the store's
``budget_windows`` rows under the scope key ``budget:<name>`` and the window's
start, atomically over every budget that applies (see ``stages.budget``).

A team, project or global budget created in the middle of its window starts with what its
subject already spent in that window (settled jobs submitted before the budget existed), so
a day budget created at noon counts the morning. One replica seeds it (a store lease named
after the budget and its creation time); a key budget starts at zero (the ledger is not
summed per caller).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from proxy import money
from proxy.context import Caller
from proxy.governance.windows import window_bounds
from proxy.stores.base import BudgetDefinitionStore, BudgetStore, JobStore, LeaseStore
from proxy.stores.records import Budget, BudgetScope, BudgetWindow

log = structlog.get_logger("proxy.budgets")

UNLIMITED = 1 << 62  # soft budgets reserve against this: they track, never refuse


def scope_key(budget: Budget) -> str:
    return f"budget:{budget.name}"


def applies(budget: Budget, caller: Caller) -> bool:
    if budget.scope == "global":
        return True
    if budget.scope == "team":
        return caller.team is not None and budget.subject == caller.team
    if budget.scope == "project":
        return caller.project is not None and budget.subject == caller.project
    return budget.subject in {caller.identity, caller.virtual_key_id}


@dataclass(frozen=True, slots=True)
class Applied:
    """One budget as it stands for one request: its window and where it resets."""

    budget: Budget
    window_start: float
    resets_at: float | None

    @property
    def scope(self) -> BudgetScope:
        limit = self.budget.limit_micros if self.budget.hard else UNLIMITED
        return BudgetScope(scope_key(self.budget), self.window_start, limit)

    @property
    def key(self) -> tuple[str, float]:
        return scope_key(self.budget), self.window_start


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def dollars(micros: int) -> str:
    return money.display(micros)


class BudgetBookStore(BudgetDefinitionStore, BudgetStore, JobStore, LeaseStore, Protocol):
    """What the book reads and writes: definitions and windows, and the ledger's spend a
    budget created mid-window starts from (seeded once, under a lease)."""


class BudgetBook:
    """Budget definitions (cached briefly) and the windows they apply in."""

    def __init__(
        self,
        store: BudgetBookStore,
        timezone: str,
        cache_seconds: float,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._tz = ZoneInfo(timezone)
        self._ttl = cache_seconds
        self._clock = clock
        self._owner = owner or uuid.uuid4().hex
        self._budgets: list[Budget] = []
        self._fresh_until = 0.0
        self._seeded: set[tuple[str, float]] = set()

    async def budgets(self) -> list[Budget]:
        now = self._clock()
        if now >= self._fresh_until:
            self._budgets = await self._store.list_budgets()
            self._fresh_until = now + self._ttl
            for budget in self._budgets:
                if (budget.name, budget.created_at) not in self._seeded:
                    await self._seed(budget, now)
        return self._budgets

    async def _seed(self, budget: Budget, now: float) -> None:
        """Count what the subject spent in the window before the budget was created."""
        self._seeded.add((budget.name, budget.created_at))
        start, resets = window_bounds(budget.window, budget.created_at, self._tz)
        if budget.created_at <= start or budget.scope == "key" or (resets and now >= resets):
            return  # created at a window's start, per caller, or its window is over
        lease = f"budget-seed:{budget.name}:{budget.created_at!r}"
        if not await self._store.acquire_lease(lease, self._owner, now, (resets or now) + 86400):
            return  # another replica seeds it
        group = [] if budget.scope == "global" else [budget.scope]
        rows = await self._store.spend_summary(start, budget.created_at, group)
        prior = sum(
            row.final_cost_micros
            for row in rows
            if budget.scope == "global" or getattr(row, budget.scope) == budget.subject
        )
        if prior <= 0:
            return
        scope = BudgetScope(scope_key(budget), start, max(budget.limit_micros, prior))
        reservation = f"seed-{uuid.uuid4().hex}"
        result = await self._store.budget_reserve([scope], prior, reservation_id=reservation)
        if result.ok:
            await self._store.budget_settle(reservation, prior)
            log.info("budget.seeded", budget=budget.name, spent_usd=money.exact(prior))

    def invalidate(self) -> None:
        self._fresh_until = 0.0

    def applied(self, budget: Budget, now: float) -> Applied:
        start, resets = window_bounds(budget.window, now, self._tz)
        return Applied(budget, start, resets)

    async def for_caller(self, caller: Caller, now: float) -> list[Applied]:
        return [self.applied(b, now) for b in await self.budgets() if applies(b, caller)]

    async def standing(self, now: float) -> list[tuple[Applied, BudgetWindow | None]]:
        """Every budget with its current window (for gauges, the admin API and reports)."""
        applied = [self.applied(b, now) for b in await self.budgets()]
        windows = await self._store.budget_windows([a.key for a in applied])
        return [(a, windows.get(a.key)) for a in applied]


def describe(applied: Applied, window: BudgetWindow, requested: int) -> dict[str, object]:
    budget = applied.budget
    return {
        "name": budget.name,
        "scope": budget.scope,
        "subject": budget.subject,
        "window": budget.window,
        "limit_usd": money.sample(budget.limit_micros),
        "spent_usd": money.sample(window.spent_micros),
        "reserved_usd": money.sample(window.reserved_micros),
        "remaining_usd": money.sample(max(0, window.remaining_micros)),
        "requested_usd": money.sample(requested),
        "resets_at": iso(applied.resets_at),
    }


def refusal_text(applied: Applied, window: BudgetWindow, requested: int) -> str:
    budget = applied.budget
    who = "global" if budget.scope == "global" else f"{budget.scope} {budget.subject!r}"
    resets = iso(applied.resets_at)
    left = dollars(max(0, window.remaining_micros))
    return (
        f"{budget.window} budget {budget.name!r} ({who}) has {left}"
        f" of {dollars(budget.limit_micros)} left ({dollars(window.spent_micros)} spent,"
        f" {dollars(window.reserved_micros)} reserved); this job is estimated at"
        f" {dollars(requested)}" + (f"; the budget resets at {resets}" if resets else "")
    )


def tightest(pairs: Sequence[tuple[Applied, BudgetWindow | None]]) -> tuple[Applied, int] | None:
    """The hard budget with the least money left, and how much is left."""
    best: tuple[Applied, int] | None = None
    for applied, window in pairs:
        if not applied.budget.hard:
            continue
        left = applied.budget.limit_micros - (
            (window.spent_micros + window.reserved_micros) if window else 0
        )
        if best is None or left < best[1]:
            best = (applied, left)
    return best
