"""The ``schemas`` component: keeps every submittable model's published schema pinned and fresh.

Every ``sync_seconds`` each replica reads the pins from the store (so an acceptance made
anywhere reaches it). Every ``refresh_seconds`` one replica, the holder of the
``schema-refresh`` lease, fetches the schema of every submittable slug (catalog and
upstream-listed) and records what changed; between full rounds it fetches the schemas of
slugs that have none yet (a model the upstream just listed). After a round the origin
failed, the next comes ``retry_seconds`` later. The lease lasts a refresh interval, so of
any number of replicas one fetches per interval; if its holder dies another takes over once
it expires.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from proxy.catalog.pinning import Pinner
from proxy.catalog.schema_registry import SchemaRegistry
from proxy.stores.base import LeaseStore, StoreError

log = structlog.get_logger("proxy.catalog.schema_refresh")
LEASE = "schema-refresh"


class SchemaRefresher:
    """One loop per replica: sync pins, and fetch when this replica holds the lease."""

    def __init__(
        self,
        registry: SchemaRegistry,
        pinner: Pinner,
        store: LeaseStore,
        owner: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self._pinner = pinner
        self._store = store
        self._owner = owner
        self._clock = clock
        self._next_full = 0.0

    def _slugs(self) -> list[str]:
        return self._pinner.every_submittable_slug()

    async def round(self) -> None:
        """One sync, and one fetch round if one is due and this replica holds the lease."""
        registry, settings = self.registry, self.registry.settings
        await registry.sync()
        now = self._clock()
        slugs = self._slugs()
        full = now >= self._next_full
        missing = [s for s in slugs if registry.pin(s) is None and not registry.backing_off(s)]
        if not full and not missing:
            return
        try:
            held = await self._store.acquire_lease(
                LEASE, self._owner, now, now + settings.refresh_seconds
            )
        except StoreError as exc:
            log.warning("schema.lease_failed", error=str(exc)[:200])
            return
        if not held:
            return
        reached = await registry.refresh_many(slugs if full else missing)
        if full:
            wait = settings.refresh_seconds if reached else settings.retry_seconds
            self._next_full = now + wait
            log.info("schema.refreshed", models=len(slugs), origin_up=reached)

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # a loop that dies stops every refresh: log it, go on
                log.exception("schema.round_failed")
            await asyncio.sleep(self.registry.settings.sync_seconds)
