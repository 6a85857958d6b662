"""The background watcher: polls the jobs no client is polling, until terminal or expiry.

Work is leased from the store (``lease_due``), so several replicas never poll
the same job at once and a dead replica's jobs are taken over when its leases
run out. Each tick costs what the due jobs cost: the store serves them from
an index on ``next_poll_at``, never a full scan.

A job the watcher has no key for (pass-through mode after a restart, no
``upstream.api_key``) is rescheduled unpolled until its client polls again; each
such job is logged once per process (``watcher.job_without_credential``) and
counted in the ``jobs_without_credential`` gauge until it has a key or is terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from urllib.parse import quote

import structlog

from proxy.catalog.loader import Catalog
from proxy.config import Settings
from proxy.governance.budgets import BudgetBook
from proxy.jobs.memory import Bounded
from proxy.jobs.schedule import is_stale, next_poll_delay
from proxy.jobs.tracker import JobTracker, Replica
from proxy.money import sample
from proxy.stores.base import StoreUnavailableError
from proxy.stores.records import JobRecord
from proxy.telemetry.ledger_gauges import LedgerGauges
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.price_points import typical_points
from proxy.telemetry.tracing import watcher_poll_span
from proxy.upstream import attempts
from proxy.upstream.client import Upstream
from proxy.upstream.retry import RetryPolicy

log = structlog.get_logger("proxy.watcher")
STATS_EVERY_SECONDS = 5.0


class Watcher:
    def __init__(
        self,
        tracker: JobTracker,
        upstream: Upstream,
        policy: RetryPolicy,
        settings: Settings,
        metrics: Metrics,
        replica: Replica,
        *,
        clock: Callable[[], float] = time.time,
        budgets: BudgetBook | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self._tracker = tracker
        self._upstream = upstream
        self._policy = policy
        self._settings = settings
        self._metrics = metrics
        self._owner = replica.id
        self._clock = clock
        # The cheapest default job: a budget with less left than this takes no more jobs.
        typical = [] if catalog is None else typical_points(catalog, settings.pricing.models)
        self.ledger = LedgerGauges(
            tracker.store,
            metrics,
            tracker.labels,
            settings.governance.timezone,
            budgets=budgets,
            smallest_job_micros=min(typical, default=None),
            clock=clock,
        )
        self._rng = random.Random()
        self._fallback_key = settings.upstream_api_key()
        self._wake = asyncio.Event()
        self._next_stats = 0.0
        # Open jobs leased without a usable key, and those already logged (once per process).
        self._keyless: set[str] = set()
        self._announced: Bounded[str, bool] = Bounded(100_000)
        self.ticks = 0

    def wake(self) -> None:
        """Run the next tick now (tests, and after a burst of submits)."""
        self._wake.set()

    async def run(self) -> None:
        tick = self._settings.watcher.tick_seconds
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watcher.tick_failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=tick)

    async def tick(self) -> int:
        """One round: expire what is overdue, poll what is due. Returns jobs polled."""
        settings = self._settings.watcher
        store = self._tracker.store
        now = self._clock()
        for job in await store.expire_overdue(now, settings.retention_seconds):
            self._keyless.discard(job.task_id)
            await self._tracker.settle(job)
        if now >= self._next_stats:
            await self._gauges(now)
        due = await store.lease_due(self._owner, now, settings.batch_size, settings.lease_seconds)
        if due:
            await asyncio.gather(*(self._poll(job) for job in due))
        self.ticks += 1
        return len(due)

    async def _gauges(self, now: float) -> None:
        """Backlog, lag, stale and in-flight gauges (shared numbers: every replica reports them)."""
        store = self._tracker.store
        stats = await store.watcher_stats(now)
        self._metrics.watcher_backlog.set(stats.due)
        lag = 0.0 if stats.oldest_due_at is None else max(0.0, now - stats.oldest_due_at)
        self._metrics.watcher_lag.set(lag)
        self._metrics.jobs_stale.set(stats.stale)
        await self._prune_keyless()
        unknown = await store.unknown_jobs()
        self._metrics.unknown_jobs.set(unknown.jobs)
        self._metrics.unknown_reserved.set(sample(unknown.held_micros))
        in_flight = await store.in_flight_by_model()
        self._metrics.jobs_in_flight.clear()
        for slug, count in in_flight.items():
            self._metrics.jobs_in_flight.labels(self._tracker.labels.model(slug)).inc(count)
        try:
            await self.ledger.refresh(now)
        except StoreUnavailableError as exc:  # the finance gauges wait; polling goes on
            log.warning("watcher.ledger_gauges_failed", error=str(exc)[:300])
        self._next_stats = now + STATS_EVERY_SECONDS

    async def _poll(self, job: JobRecord) -> None:
        key = self._tracker.keys.get(job.task_id) or self._fallback_key
        attempts_made = job.watcher_attempts + 1
        if key is None:
            # No key to poll with (pass-through mode after a restart): wait for the client.
            self._without_key(job)
            await self._reschedule(job, job.watcher_attempts)
            return
        if job.task_id in self._keyless:
            self._keyless.discard(job.task_id)
            self._metrics.jobs_without_credential.set(len(self._keyless))
        headers = {
            "Authorization": key if " " in key else f"Bearer {key}",
            "Accept": "application/json",
        }
        tracing = self._tracker.settler.tracing
        span = (
            contextlib.nullcontext()
            if tracing is None
            else watcher_poll_span(
                tracing,
                task_id=job.task_id,
                model=job.pinned_slug,
                attempt=attempts_made,
                submit_traceparent=job.traceparent,
            )
        )
        with span:
            outcome = await attempts.send(
                self._upstream,
                self._policy,
                "GET",
                f"/api/v1/tasks/{quote(job.task_id, safe='')}",
                headers,
                None,
                operation="poll",
                idempotent=True,
                rng=self._rng,
                on_retry=lambda reason: self._metrics.upstream_retries.labels("poll", reason).inc(),
            )
            self._metrics.job_polls.labels("watcher").inc()
            updated = None
            if outcome.reply is not None:
                updated = await self._tracker.observe_reply(
                    job.task_id,
                    outcome.reply.status,
                    outcome.reply.body,
                    source="watcher",
                )
        if updated is not None and updated.terminal:
            return
        await self._reschedule(job, attempts_made)

    def _without_key(self, job: JobRecord) -> None:
        """Count the job as unpollable; log it the first time this process finds it so."""
        if job.task_id in self._keyless:
            return
        self._keyless.add(job.task_id)
        self._metrics.jobs_without_credential.set(len(self._keyless))
        if self._announced.get(job.task_id):
            return
        self._announced.put(job.task_id, True)
        log.warning(
            "watcher.job_without_credential",
            task_id=job.task_id,
            model=job.pinned_slug,
            team=job.team,
            submitted_at=job.submitted_at,
            correlation_id=job.correlation_id,
            detail="no upstream key in memory and no upstream.api_key: polled only when "
            "its client polls",
        )

    async def _prune_keyless(self) -> None:
        """Forget jobs that have a key again (a client polled) or are terminal."""
        keys = self._tracker.keys
        self._keyless = {t for t in self._keyless if keys.get(t) is None}
        if self._keyless:
            self._keyless &= await self._tracker.store.open_among(sorted(self._keyless))
        self._metrics.jobs_without_credential.set(len(self._keyless))

    async def _reschedule(self, job: JobRecord, attempts_made: int) -> None:
        cadence = self._tracker.cadence
        delay = next_poll_delay(max(1, attempts_made), cadence, self._rng.random())
        await self._tracker.store.reschedule(
            job.task_id,
            self._owner,
            self._clock() + delay,
            attempts_made,
            is_stale(attempts_made, cadence),
        )
