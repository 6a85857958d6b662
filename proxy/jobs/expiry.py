"""Expiry: open jobs that never reached a terminal state within the upstream's retention.

Every ``watcher.tick_seconds`` the store turns open jobs submitted more than
``watcher.retention_seconds`` ago into ``expired`` (their reservation released, their slot
freed, in the same transaction; ``SKIP LOCKED``, so replicas share the work), and each one is
settled once: metrics, the ``job.terminal`` line, the job span, webhooks. It runs whatever
``watcher.enabled`` says: a proxy whose watcher is off still releases what such jobs hold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from proxy.config import WatcherSettings
from proxy.jobs.tracker import JobTracker
from proxy.stores.base import StoreUnavailableError

log = structlog.get_logger("proxy.expiry")


class Expiry:
    """Expires overdue jobs every tick while it runs."""

    def __init__(
        self,
        tracker: JobTracker,
        settings: WatcherSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tracker = tracker
        self._settings = settings
        self._clock = clock
        self.rounds = 0

    async def run(self) -> None:
        """A round every ``tick_seconds`` until cancelled; a failed round is logged."""
        while True:
            try:
                await self.round()
            except StoreUnavailableError as exc:
                log.warning("expiry.store_unavailable", error=str(exc)[:300])
            except Exception:
                log.exception("expiry.round_failed")
            await asyncio.sleep(self._settings.tick_seconds)

    async def round(self) -> int:
        """Expire and settle what is overdue now; how many jobs expired."""
        store = self._tracker.store
        expired = await store.expire_overdue(self._clock(), self._settings.retention_seconds)
        for job in expired:
            await self._tracker.settle(job)
        self.rounds += 1
        return len(expired)
