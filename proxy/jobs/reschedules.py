"""The watcher's next polls, written many to a transaction (``reschedule_many``).

Each poll leaves its job's next poll here instead of writing it: every
``flush_seconds`` (sooner past ``FLUSH_AT`` waiting) one transaction writes them all,
releasing their leases. Until then the jobs stay leased, so nobody else polls them. If
the store is down they wait for the next flush; if the process dies first, the leases
run out and the jobs fall due again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from proxy.stores.base import Reschedule, StoreUnavailableError, WatcherStore

log = structlog.get_logger("proxy.watcher")
FLUSH_AT = 500
"""Reschedules waiting that trigger a flush before ``flush_seconds`` is up."""
RETRY_FLUSH_SECONDS = 1.0
"""After a flush the store refused, the next try waits at least this long."""


class RescheduleWriter:
    """Next polls waiting to be written, one ``reschedule_many`` transaction per flush."""

    def __init__(
        self,
        store: WatcherStore,
        owner: str,
        flush_seconds: float,
        *,
        on_written: Callable[[float], None] = lambda _: None,
    ) -> None:
        self._store = store
        self._owner = owner
        self._flush_seconds = flush_seconds
        self._on_written = on_written
        self._pending: dict[str, Reschedule] = {}
        self._kick = asyncio.Event()
        self._flushed = asyncio.Event()
        self.flushes = 0
        self.written = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, item: Reschedule) -> None:
        self._pending[item.task_id] = item
        if len(self._pending) >= FLUSH_AT:
            self._kick.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=self._flush_seconds)
            self._kick.clear()
            if await self.flush() < 0:  # the store is down: try again less often
                await asyncio.sleep(RETRY_FLUSH_SECONDS)

    async def flush(self) -> int:
        """Write what is waiting; how many jobs changed, or -1 (kept for the next flush)."""
        if not self._pending:
            return 0
        batch, self._pending = list(self._pending.values()), {}
        try:
            changed = await self._store.reschedule_many(self._owner, batch)
        except StoreUnavailableError as exc:
            log.warning("watcher.reschedules_not_written", jobs=len(batch), error=str(exc)[:300])
            for item in batch:  # a newer word about a job, if any, wins
                self._pending.setdefault(item.task_id, item)
            return -1
        self.flushes += 1
        self.written += len(batch)
        self._on_written(min(item.next_poll_at for item in batch))
        self._flushed.set()
        self._flushed = asyncio.Event()
        return changed

    async def wait_written(self, count: int) -> None:
        """Return once ``count`` reschedules in all have been written (tests, benchmarks)."""
        while self.written < count:
            await self._flushed.wait()
