"""Retention: delete what is past its keep-by time, in bounded batches, one replica at a time.

A round purges, per table, at most ``retention.batch_size`` rows per transaction, so no
transaction holds the writer (SQLite) or many row locks (PostgreSQL) for long:

* ``idempotency_keys``: expired keys (``retention.idempotency_seconds`` after the claim
  if set, never before ``idempotency.ttl_seconds`` has run out);
* ``refusals``: refused requests older than ``retention.refusals_seconds``;
* ``budget_reservations``: settled or released reservations created more than
  ``retention.reservations_seconds`` ago (open ones never);
* ``settlements``: the settlement journal's rows older than ``retention.settlements_seconds``
  that every balance reading has counted;
* ``media_files``: which proxy key uploaded a file, ``retention.media_files_seconds`` after
  the upload (the upstream has let the file expire by then);
* ``audit_log``: the audit trail's oldest rows, older than ``audit.retention_days``
  (a prefix of the chain only, its last row kept as the anchor: ``proxy.audit.retention``);
* ``jobs``: terminal jobs older than ``retention.terminal_jobs_seconds``, only if the
  operator sets it (the ledger is kept forever by default; open jobs never).

Replicas share one lease row (``leases.name = 'retention'``): a round starts only if the
lease is free or already this replica's, renews it between batches (and stops if it was
lost), and at the end holds it until the next round is due, so one round runs per interval
across all replicas. A replica that dies keeps the lease at most that long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from proxy.config import Settings
from proxy.stores.base import (
    AuditStore,
    BalanceStore,
    IdempotencyStore,
    IntentStore,
    JobUpkeepStore,
    LeaseStore,
    MediaFileStore,
    RefusalStore,
)
from proxy.telemetry.metrics import Metrics

log = structlog.get_logger("proxy.retention")
LEASE = "retention"

Purge = Callable[[int], Awaitable[int]]


class RetentionStore(
    LeaseStore,
    IdempotencyStore,
    RefusalStore,
    IntentStore,
    BalanceStore,
    JobUpkeepStore,
    MediaFileStore,
    AuditStore,
    Protocol,
):
    """The round's lease, and the bounded purge of each table retention keeps short."""


class Retention:
    """Runs retention rounds every ``retention.interval_seconds`` while the app runs."""

    def __init__(
        self,
        store: RetentionStore,
        settings: Settings,
        metrics: Metrics,
        owner: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._owner = owner
        self._clock = clock
        self.rounds = 0

    async def run(self) -> None:
        """Run a round, then wait the interval; until cancelled (the lease is then given up)."""
        interval = self._settings.retention.interval_seconds
        try:
            while True:
                try:
                    await self.round()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("retention.round_failed", owner=self._owner)
                await asyncio.sleep(interval)
        finally:
            await self._release()

    async def round(self) -> dict[str, int] | None:
        """One round if this replica gets the lease: rows purged per table; ``None`` if not."""
        retention = self._settings.retention
        started = self._clock()
        if not await self._renew(started):
            return None
        purged: dict[str, int] = {}
        for table, purge in self._purges(started).items():
            total = 0
            while True:
                deleted = await purge(retention.batch_size)
                total += deleted
                if deleted:
                    self._metrics.retention_purged.labels(table).inc(deleted)
                if deleted < retention.batch_size:
                    break
                if not await self._renew(self._clock()):
                    log.warning("retention.lease_lost", owner=self._owner, table=table)
                    return None
            purged[table] = total
        finished = self._clock()
        # Hold the lease until the next round is due: one round per interval across replicas.
        await self._store.acquire_lease(
            LEASE, self._owner, finished, finished + retention.interval_seconds
        )
        self._metrics.retention_last_success.set(finished)
        self.rounds += 1
        if any(purged.values()):
            log.info(
                "retention.round",
                owner=self._owner,
                purged=purged,
                seconds=round(finished - started, 3),
            )
        return purged

    def _purges(self, now: float) -> dict[str, Purge]:
        """What this round deletes, per table, with the cutoffs fixed at the round's start."""
        retention = self._settings.retention
        store = self._store
        claimed_before = (
            now if retention.idempotency_seconds is None else now - retention.idempotency_seconds
        )
        purges: dict[str, Purge] = {
            "idempotency_keys": lambda n: store.purge_idempotency_keys(now, claimed_before, n)
        }
        if retention.refusals_seconds is not None:
            refusals_before = now - retention.refusals_seconds
            purges["refusals"] = lambda n: store.purge_refusals(refusals_before, n)
        if retention.reservations_seconds is not None:
            reservations_before = now - retention.reservations_seconds
            purges["budget_reservations"] = lambda n: store.purge_closed_reservations(
                reservations_before, n
            )
        if retention.settlements_seconds is not None:
            settlements_before = now - retention.settlements_seconds
            purges["settlements"] = lambda n: store.purge_settlements(settlements_before, n)
        if retention.media_files_seconds is not None:
            files_before = now - retention.media_files_seconds
            purges["media_files"] = lambda n: store.purge_media_files(files_before, n)
        if retention.terminal_jobs_seconds is not None:
            jobs_before = now - retention.terminal_jobs_seconds
            purges["jobs"] = lambda n: store.purge_terminal_jobs(jobs_before, n)
        audit_before = now - self._settings.audit.retention_days * 86400
        purges["audit_log"] = lambda n: store.prune_audit(audit_before, n, now)
        return purges

    async def _renew(self, now: float) -> bool:
        until = now + self._settings.retention.lease_seconds
        return await self._store.acquire_lease(LEASE, self._owner, now, until)

    async def _release(self) -> None:
        try:
            await self._store.release_lease(LEASE, self._owner)
        except Exception:  # shutting down: the lease runs out by itself
            log.warning("retention.release_failed", owner=self._owner, exc_info=True)
