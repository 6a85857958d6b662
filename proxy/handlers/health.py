"""The proxy's own liveness and readiness answers.

``/healthz`` says the process serves requests; ``/readyz`` says it could do its work now:
the upstream session is open and the store takes a write (its ``schemas`` detail says
whether the schema origin answers; that never makes a replica unready). The write probe is cheap (a
write lock taken and let go, or a writable-transaction check), bounded by a short timeout,
and its answer is kept about a second so frequent probes cost nothing more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from proxy.state import READY, RUNTIME
from proxy.stores.base import ProbeStore, StoreError

log = structlog.get_logger("proxy.health")


class WriteProbe:
    """Whether the store takes a write, probed at most once per ``ttl`` seconds."""

    def __init__(
        self,
        store: Callable[[], ProbeStore | None],
        *,
        timeout: float = 1.0,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._timeout = timeout
        self._ttl = ttl
        self._clock = clock
        self._lock = asyncio.Lock()
        self._checked_at: float | None = None
        self._ok = False

    def _fresh(self) -> bool:
        return self._checked_at is not None and self._clock() - self._checked_at < self._ttl

    async def __call__(self) -> bool:
        if self._fresh():
            return self._ok
        async with self._lock:  # concurrent probes share one check
            if not self._fresh():
                self._ok = await self._probe()
                self._checked_at = self._clock()
        return self._ok

    async def _probe(self) -> bool:
        store = self._store()
        if store is None:
            return False
        try:
            async with asyncio.timeout(self._timeout):
                await store.probe_write()
        except (StoreError, TimeoutError, OSError) as exc:
            if self._ok or self._checked_at is None:
                log.warning("store.not_writable", error=f"{type(exc).__name__}: {exc}"[:300])
            return False
        return True


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks = await request.app[READY]()
    ready = all(ok for ok in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
    runtime = request.app.get(RUNTIME)
    if runtime is not None and runtime.schemas is not None:  # a detail: never makes it unready
        body["schemas"] = runtime.schemas.health()
    return web.json_response(body, status=200 if ready else 503)
