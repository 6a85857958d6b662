"""Reserve the job's estimate on every budget that applies, atomically, before submit.

Over a hard limit the submit is refused with 402 naming the budget, its limit,
what is spent and reserved, and when the window resets. A model without a
price is refused wherever a hard budget applies (fail closed). The per-key
concurrency cap is a counter reserved the same way (one slot per job in
flight), refused with 429 before the upstream's own team-wide limit is hit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from proxy.catalog.listed import price_hint
from proxy.context import RequestContext
from proxy.errors import BudgetExceeded, TooManyRequests
from proxy.governance.budgets import BudgetBook, describe, dollars, refusal_text, tightest
from proxy.money import exact
from proxy.stores.base import BudgetDefinitionStore, BudgetStore
from proxy.stores.records import BudgetScope
from proxy.telemetry.metrics import Metrics


class BudgetStageStore(BudgetStore, BudgetDefinitionStore, Protocol):
    """Reservations (money and the key's slot), and the windows the headers report."""


class BudgetStage:
    name = "budget"

    def __init__(
        self,
        store: BudgetStageStore,
        book: BudgetBook,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        *,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._book = book
        self._metrics = metrics
        self._clock = clock
        self._owner = owner  # the replica holding reservations until a ledger row does

    async def __call__(self, ctx: RequestContext) -> None:
        caller = ctx.caller
        if caller is None:
            return
        await self._slot(ctx)
        now = self._clock()
        applied = await self._book.for_caller(caller, now)
        if not applied:
            return
        hard = [a for a in applied if a.budget.hard]
        amount = ctx.estimated_cost_micros
        if amount is None:
            if hard:
                names = ", ".join(a.budget.name for a in hard)
                raise BudgetExceeded(
                    f"model {ctx.pinned_slug} has no price (neither the upstream's model list nor "
                    f"pricing.models prices it), and budget(s) "
                    f"{names} apply: unpriced jobs are refused where a budget applies; "
                    + price_hint(ctx.pinned_slug, ctx.pin_policy_outcome),
                    reason="unpriced_under_budget",
                )
            return
        # Named before the call: if the store commits and then fails to say so, the request
        # still knows what to release (releasing what was never held is a no-op).
        ctx.reservation_id = f"job:{ctx.internal_id}"
        result = await self._store.budget_reserve(
            [a.scope for a in applied],
            amount,
            reservation_id=ctx.reservation_id,
            owner=self._owner,
            at=now,
        )
        if result.reservation is None:
            ctx.reservation_id = None
            window = result.refused
            refused = next(
                (a for a in applied if window and a.key == (window.scope_key, window.window_start)),
                None,
            )
            if window is None or refused is None:
                raise BudgetExceeded("a budget would be exceeded", reason="budget_exceeded")
            self._metrics.budget_refusals.labels(refused.budget.name, refused.budget.scope).inc()
            raise BudgetExceeded(
                refusal_text(refused, window, amount),
                reason="budget_exceeded",
                details={"budget": describe(refused, window, amount)},
                headers={"X-Modellix-Proxy-Budget": refused.budget.name},
            )
        windows = await self._store.budget_windows([a.key for a in applied])
        best = tightest([(a, windows.get(a.key)) for a in applied])
        if best is not None:
            applied_budget, left = best
            ctx.budget_headers = {
                "X-Modellix-Proxy-Budget": applied_budget.budget.name,
                "X-Modellix-Proxy-Budget-Remaining-USD": exact(max(0, left)),
            }

    async def _slot(self, ctx: RequestContext) -> None:
        caller = ctx.caller
        if caller is None or caller.max_concurrent_jobs is None or caller.virtual_key_id is None:
            return
        cap = caller.max_concurrent_jobs
        ctx.slot_reservation_id = f"slot:{ctx.internal_id}"  # named first, as above
        result = await self._store.budget_reserve(
            [BudgetScope(f"jobs:{caller.virtual_key_id}", 0.0, cap)],
            1,
            reservation_id=ctx.slot_reservation_id,
            owner=self._owner,
            at=self._clock(),
        )
        if result.reservation is None:
            ctx.slot_reservation_id = None
            raise TooManyRequests(
                f"key {caller.virtual_key_id} already has {cap} job(s) in flight (its limit); "
                "wait for one to finish",
                reason="key_concurrency",
            )


__all__ = ["BudgetStage", "dollars"]
