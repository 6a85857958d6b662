"""Finance gauges read from the ledger (the store), so dashboards equal the spend report.

Counters appear at their first increment, and ``increase()`` extrapolates: panels built on
them miss each series' first job and are never exact. These gauges are the store's own
sums, refreshed every few seconds (the watcher's stats round) and replaced as a whole, so
a deleted budget or a series that no longer has rows disappears at once:

- settled spend and job counts of jobs submitted today, this month and in total (``total``
  is the month plus everything before it, the latter re-read at most hourly), by team,
  project and model; settled spend today and this month by where the cost came from;
- estimated cost of refused submits today and this month, by team, project, model, reason;
- exact P50/P95 of successful jobs' final cost over the last 24 hours, by model (computed
  by the store's SQL, never by loading the day's jobs);
- every budget's limit, spend and reservations in its current window.

Windows follow ``governance.timezone`` like budgets. Every replica reports the same shared
numbers: panels take ``max`` over instances, never ``sum``. Labels are bounded by
:class:`proxy.jobs.labels.Labels` (unknown values become ``other``, and merge).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo

from proxy.governance.budgets import BudgetBook
from proxy.governance.windows import window_bounds
from proxy.jobs.labels import Labels
from proxy.money import sample
from proxy.stores.base import JobStore, LedgerReadStore, RefusalStore
from proxy.stores.records import CostQuantiles, RefusalGroupKey, spend_source
from proxy.telemetry.metrics import Metrics

PERCENTILE_SECONDS = 86400.0
#: Below this many costed jobs a day the percentile query is cheap enough for every refresh.
CHEAP_PERCENTILE_JOBS = 5000
# Jobs submitted "in the future" (another replica's clock a little ahead) still count.
CLOCK_SLACK_SECONDS = 86400.0

SpendKey = tuple[str, str, str]  # team, project, model
RefusalKey = tuple[str, str, str, str]  # team, project, model, reason


class LedgerGaugeStore(JobStore, LedgerReadStore, RefusalStore, Protocol):
    """The spend sums, the cost percentiles and the refusal sums the gauges show."""


@dataclass
class _Totals:
    spend: dict[SpendKey, int] = field(default_factory=lambda: defaultdict(int))
    jobs: dict[SpendKey, int] = field(default_factory=lambda: defaultdict(int))


class LedgerGauges:
    """Reads the ledger's sums from the store and sets the finance gauges from them."""

    def __init__(
        self,
        store: LedgerGaugeStore,
        metrics: Metrics,
        labels: Labels,
        timezone: str,
        *,
        budgets: BudgetBook | None = None,
        smallest_job_micros: int | None = None,
        base_seconds: float = 3600.0,
        percentile_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._labels = labels
        self._tz = ZoneInfo(timezone)
        self._budgets = budgets
        self._base_seconds = base_seconds
        self._percentile_seconds = percentile_seconds
        self._clock = clock
        self._base: _Totals = _Totals()
        self._base_key: tuple[float, float] | None = None  # (month start, read at)
        self._next_percentiles = 0.0
        if smallest_job_micros is not None:
            metrics.smallest_job.set(sample(smallest_job_micros))

    def _spend_key(self, team: str | None, project: str | None, model: str | None) -> SpendKey:
        labels = self._labels
        return labels.team(team), labels.project(project), labels.model(model)

    async def _spend(self, since: float, until: float) -> _Totals:
        totals = _Totals()
        for row in await self._store.spend_summary(since, until, ["team", "project", "model"]):
            key = self._spend_key(row.team, row.project, row.model)
            totals.spend[key] += row.final_cost_micros
            totals.jobs[key] += row.jobs
        return totals

    async def _by_source(self, since: float, until: float) -> dict[str, int]:
        spent: dict[str, int] = defaultdict(int)
        for row in await self._store.spend_summary(since, until, ["price_source", "cost_source"]):
            spent[spend_source(row.price_source, row.cost_source)] += row.final_cost_micros
        return spent

    async def _refused(self, since: float, until: float) -> dict[RefusalKey, int]:
        avoided: dict[RefusalKey, int] = defaultdict(int)
        group: list[RefusalGroupKey] = ["team", "project", "model", "reason"]
        for row in await self._store.refusal_summary(since, until, group):
            key = (*self._spend_key(row.team, row.project, row.model), row.reason or "other")
            avoided[key] += row.avoided_micros
        return avoided

    async def refresh(self, now: float | None = None, *, percentiles: bool = False) -> None:
        """Read every sum first, then replace the gauges without awaiting in between.

        Percentiles (a scan of the last day's jobs) are re-read at every call while the day
        holds few jobs, else every ``percentile_seconds``; ``percentiles`` forces them.
        """
        now = self._clock() if now is None else now
        until = now + CLOCK_SLACK_SECONDS
        day_start, _ = window_bounds("day", now, self._tz)
        month_start, _ = window_bounds("month", now, self._tz)
        day, month = await self._spend(day_start, until), await self._spend(month_start, until)
        if (
            self._base_key is None
            or self._base_key[0] != month_start
            or now - self._base_key[1] >= self._base_seconds
        ):
            self._base = await self._spend(0.0, month_start)
            self._base_key = (month_start, now)
        by_source = {
            "day": await self._by_source(day_start, until),
            "month": await self._by_source(month_start, until),
        }
        refused = {
            "day": await self._refused(day_start, until),
            "month": await self._refused(month_start, until),
        }
        costs = await self._percentiles(now, until, percentiles)
        standing = await self._budgets.standing(now) if self._budgets is not None else None
        # --- no await below: a scrape sees the old set or the new one, never half ---------
        m = self._metrics
        m.ledger_spend.clear()
        m.ledger_jobs.clear()
        total = _Totals()
        for part in (self._base, month):
            for key, micros in part.spend.items():
                total.spend[key] += micros
            for key, count in part.jobs.items():
                total.jobs[key] += count
        for window, totals in (("day", day), ("month", month), ("total", total)):
            for key, micros in totals.spend.items():
                m.ledger_spend.labels(window, *key).set(sample(micros))
            for key, count in totals.jobs.items():
                m.ledger_jobs.labels(window, *key).set(count)
        m.ledger_spend_by_source.clear()
        for window, sources in by_source.items():
            for source, micros in sources.items():
                m.ledger_spend_by_source.labels(window, source).set(sample(micros))
        m.ledger_refused_savings.clear()
        for window, avoided in refused.items():
            for rkey, micros in avoided.items():
                m.ledger_refused_savings.labels(window, *rkey).set(sample(micros))
        if costs is not None:
            quantiles = ((m.ledger_job_cost_p50, "p50"), (m.ledger_job_cost_p95, "p95"))
            for gauge, _ in quantiles:
                gauge.clear()
            m.ledger_costed_jobs.clear()
            for q in costs:
                label = self._labels.model(q.model)
                m.ledger_costed_jobs.labels(label).set(q.jobs)
                m.ledger_job_cost_p50.labels(label).set(sample(q.p50_micros))
                m.ledger_job_cost_p95.labels(label).set(sample(q.p95_micros))
        if standing is not None:
            for gauge in (m.budget_limit, m.budget_spent, m.budget_reserved):
                gauge.clear()
            for applied, row in standing:
                names = (applied.budget.name, applied.budget.scope, applied.budget.window)
                m.budget_limit.labels(*names).set(sample(applied.budget.limit_micros))
                m.budget_spent.labels(*names).set(sample(row.spent_micros if row else 0))
                m.budget_reserved.labels(*names).set(sample(row.reserved_micros if row else 0))
        m.ledger_refreshed.set(now)

    async def _percentiles(self, now: float, until: float, due: bool) -> list[CostQuantiles] | None:
        """P50/P95 of the last day's successful jobs by model label, computed by the store
        (models without a label of their own merged into one group); ``None``: not due."""
        if not due and now < self._next_percentiles:
            return None
        since = now - PERCENTILE_SECONDS
        slugs = await self._store.costed_models(since, until)
        merge = [slug for slug in slugs if self._labels.model(slug) != slug]
        costs = await self._store.cost_quantiles(since, until, merge=merge)
        busy = sum(q.jobs for q in costs) >= CHEAP_PERCENTILE_JOBS
        self._next_percentiles = now + (self._percentile_seconds if busy else 0.0)
        return costs
