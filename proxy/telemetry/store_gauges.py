"""Gauges read from the store: the watcher's backlog, open and unknown jobs, the finance sums.

Every ``watcher.gauges_seconds`` these numbers are read from the store and set, whatever
``watcher.enabled`` says (the backlog of a proxy whose watcher is off is exactly what an
operator wants to see grow):

- the watcher's backlog, lag and stale jobs (``watcher_stats``);
- ``unknown`` records and the money they hold;
- open jobs by model;
- each Modellix account's tasks in flight and its concurrency (``proxy.accounts``);
- the finance gauges (``proxy.telemetry.ledger_gauges``): spend, job counts, refusals' savings,
  cost percentiles and every budget's standing.

They are shared numbers (every replica reads the same store), so only a process whose
``/metrics`` is scraped reads them: with ``serve --workers`` that is worker 0.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from proxy.accounts import AccountBook
from proxy.catalog.loader import Catalog
from proxy.config import Settings
from proxy.governance.budgets import BudgetBook
from proxy.jobs.labels import Labels
from proxy.money import sample
from proxy.stores.base import (
    AdmissionStore,
    JobUpkeepStore,
    StoreUnavailableError,
    WatcherStore,
)
from proxy.telemetry.ledger_gauges import LedgerGauges, LedgerGaugeStore
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.price_points import typical_points

log = structlog.get_logger("proxy.gauges")


class StoreGaugeStore(LedgerGaugeStore, WatcherStore, JobUpkeepStore, AdmissionStore, Protocol):
    """The ledger gauges' reads, the watcher's backlog, the unknown jobs, accounts in flight."""


class StoreGauges:
    """Reads the store's sums and sets the gauges, every ``gauges_seconds`` while it runs."""

    def __init__(
        self,
        store: StoreGaugeStore,
        settings: Settings,
        metrics: Metrics,
        labels: Labels,
        *,
        budgets: BudgetBook | None = None,
        catalog: Catalog | None = None,
        accounts: AccountBook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._interval = settings.watcher.gauges_seconds
        self._metrics = metrics
        self._labels = labels
        self._clock = clock
        # The cheapest default job: a budget with less left than this takes no more jobs.
        typical = [] if catalog is None else typical_points(catalog, settings.pricing.models)
        self.ledger = LedgerGauges(
            store,
            metrics,
            labels,
            settings.governance.timezone,
            budgets=budgets,
            smallest_job_micros=min(typical, default=None),
            clock=clock,
        )
        self.rounds = 0

    async def run(self) -> None:
        """A round every ``gauges_seconds`` until cancelled; a failed round is logged."""
        while True:
            try:
                await self.round()
            except StoreUnavailableError as exc:  # the gauges wait; everything else goes on
                log.warning("gauges.store_unavailable", error=str(exc)[:300])
            except Exception:
                log.exception("gauges.round_failed")
            await asyncio.sleep(self._interval)

    async def round(self) -> None:
        """Read every store-backed gauge once."""
        now = self._clock()
        store, m = self._store, self._metrics
        stats = await store.watcher_stats(now)
        m.watcher_backlog.set(stats.due)
        m.watcher_lag.set(
            0.0 if stats.oldest_due_at is None else max(0.0, now - stats.oldest_due_at)
        )
        m.jobs_stale.set(stats.stale)
        unknown = await store.unknown_jobs()
        m.unknown_jobs.set(unknown.jobs)
        m.unknown_reserved.set(sample(unknown.held_micros))
        in_flight = await store.in_flight_by_model()
        m.jobs_in_flight.clear()
        for slug, count in in_flight.items():
            m.jobs_in_flight.labels(self._labels.model(slug)).inc(count)
        for account in self._accounts.all() if self._accounts is not None else ():
            label = self._labels.account(account.name)
            m.account_in_flight.labels(label).set(
                await store.admission_account_in_flight(account.name)
            )
            m.account_concurrency.labels(label).set(account.concurrency or 0)
        await self.ledger.refresh(now)
        self.rounds += 1
