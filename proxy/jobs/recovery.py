"""Heartbeats, and the sweep that cleans up after replicas that died mid-submit.

Every replica writes a heartbeat; a replica whose heartbeat is older than
``recovery.lease_seconds`` is gone. Its submit intents (sent or about to be, outcome
never recorded) become ``unknown`` records, counted, logged and visible in the admin
API; the reservations and concurrency slots it held for requests in progress are
released. Any live replica sweeps (each item is taken once, in its own transaction),
at start-up and every heartbeat, so a restarted or surviving replica frees what a dead
one held within one lease.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from proxy.config import RecoverySettings
from proxy.jobs.settler import Settler
from proxy.money import optional_sample
from proxy.stores.base import IntentStore, StoreError
from proxy.telemetry.metrics import Metrics

log = structlog.get_logger("proxy.recovery")


class RecoverySweep:
    def __init__(
        self,
        store: IntentStore,
        settings: RecoverySettings,
        metrics: Metrics,
        replica_id: str,
        settler: Settler,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._me = replica_id
        self._settler = settler
        self._clock = clock

    async def beat(self) -> None:
        await self._store.heartbeat(self._me, self._clock())

    async def sweep(self) -> int:
        """One round; how many things were recovered."""
        found = await self._store.recover(
            self._me, self._clock(), self._settings.lease_seconds, self._settings.batch_size
        )
        for job in found.unknown:
            self._metrics.intents_recovered.inc()
            self._metrics.submit_unknown.labels(self._settler.labels.model(job.pinned_slug)).inc()
            log.warning(
                "job.recovered_as_unknown",
                placeholder=job.task_id,
                model=job.pinned_slug,
                caller=job.caller,
                team=job.team,
                input_hash=job.input_hash,
                correlation_id=job.correlation_id,
                idempotency_key=job.idempotency_key,
                estimated_cost_usd=optional_sample(job.estimated_cost_micros),
                detail=job.error_reason,
            )
        if found.reservations_released:
            self._metrics.reservations_reclaimed.inc(found.reservations_released)
            log.warning("recovery.reservations_released", count=found.reservations_released)
        if found.claims_released:
            log.warning("recovery.claims_released", count=found.claims_released)
        return len(found.unknown) + found.reservations_released + found.claims_released

    async def round(self) -> None:
        """A heartbeat, then sweeps until nothing is left to recover."""
        await self.beat()
        while await self.sweep() >= self._settings.batch_size:
            pass

    async def run(self) -> None:
        """Heartbeat and sweep every ``heartbeat_seconds`` until cancelled (start-up has done
        the first round); a store outage only delays a round."""
        while True:
            await asyncio.sleep(self._settings.heartbeat_seconds)
            try:
                await self.round()
            except (StoreError, OSError, TimeoutError) as exc:
                log.warning("recovery.round_failed", error=str(exc)[:300])
