"""One scenario's world: a fresh store, the upstream process, virtual keys and proxies.

Each scenario gets its own SQLite file or its own fresh PostgreSQL database (the
shared server is never stopped: faults go through a ``Relay`` in front of it).
Two virtual keys are created in the store before any proxy starts: ``main`` (a
generous concurrency cap, so every submit holds a slot) and ``capped`` (cap 3, the
key the slot probe checks). A global lifetime budget makes every priced submit
hold a budget reservation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chaos.processes import Fleet, Upstream
from chaos.relay import Relay
from chaos.storeview import StoreView
from harness.config import proxy_env
from harness.postgres import fresh_postgres
from proxy.config import Settings
from proxy.governance.keys import new_key
from proxy.stores import open_store

MAIN_CAP = 1000
CAPPED_CAP = 3
BUDGETS = "[{name: chaos-global, scope: global, window: lifetime, limit_usd: 1000000}]"
BASE_ENV = {
    "MODELLIX_PROXY_KEYS__MODE": "virtual",
    "MODELLIX_PROXY_GOVERNANCE__BUDGETS": BUDGETS,
    "MODELLIX_PROXY_UPSTREAM__READ_TIMEOUT_SECONDS": "2",
}
# A short replica lease, so a killed proxy's leftovers are reclaimed within the settle
# time (only where the proxy has the setting: the suite also runs against older code).
RECOVERY_ENV = {
    "MODELLIX_PROXY_RECOVERY__LEASE_SECONDS": "4",
    "MODELLIX_PROXY_RECOVERY__HEARTBEAT_SECONDS": "1",
}
BASE_UPSTREAM: dict[str, Any] = {
    "concurrency_limit": 0,
    "initial_balance_usd": "10000000",
    "pending_seconds": 0.1,
    "processing_seconds": [0.2, 0.4],
    "stall_seconds": 4.0,
}


@dataclass
class Setup:
    """What differs between scenarios in how the world is built."""

    store: str = "sqlite"  # sqlite | postgres
    replicas: int = 1
    relay: bool = False
    latency: float = 0.3
    upstream: Mapping[str, Any] = field(default_factory=dict)
    proxy_env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Rig:
    setup: Setup
    workdir: Path
    store_url: str
    upstream: Upstream
    fleet: Fleet
    view: StoreView
    tokens: dict[str, str]
    relay: Relay | None = None

    async def live(self) -> list[str]:
        return self.fleet.urls()


async def _make_keys(store_url: str) -> dict[str, str]:
    store = await open_store(store_url)  # also migrates the fresh store
    try:
        tokens: dict[str, str] = {}
        for name, cap in (("main", MAIN_CAP), ("capped", CAPPED_CAP)):
            record, token = new_key(
                time.time(), name=f"chaos-{name}", team="chaos", max_concurrent_jobs=cap
            )
            await store.create_virtual_key(record)
            tokens[name] = token
        return tokens
    finally:
        await store.close()


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


@asynccontextmanager
async def _store(setup: Setup, workdir: Path) -> AsyncIterator[str]:
    if setup.store == "postgres":
        async with fresh_postgres() as url:
            yield url
    else:
        yield f"sqlite:///{workdir / 'store.db'}"


@asynccontextmanager
async def open_rig(
    setup: Setup, workdir: Path, extra_env: Mapping[str, str] | None = None
) -> AsyncIterator[Rig]:
    """Everything started except the proxies (the scenario decides when they start)."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    async with _store(setup, workdir) as store_url:
        tokens = await _make_keys(store_url)
        relay: Relay | None = None
        proxy_store_url = store_url
        if setup.relay:
            target = urlsplit(store_url)
            relay = await Relay(target.hostname or "127.0.0.1", target.port or 5432).start()
            proxy_store_url = _via(store_url, relay.port)
        upstream = Upstream(workdir, {**BASE_UPSTREAM, **setup.upstream}, setup.latency)
        env = proxy_env(upstream.url, proxy_store_url, **BASE_ENV)
        env.update(schema_env(upstream.schema_url))
        if "recovery" in Settings.model_fields:
            env.update(RECOVERY_ENV)
        env.update(setup.proxy_env)
        env.update(extra_env or {})
        fleet = Fleet(env, workdir, setup.replicas)
        view = StoreView(store_url)
        rig = Rig(setup, workdir, store_url, upstream, fleet, view, tokens, relay)
        try:
            await upstream.start()
            yield rig
        finally:
            with contextlib.suppress(OSError, TimeoutError):
                await fleet.stop_all()
            with contextlib.suppress(OSError, TimeoutError):
                await upstream.stop()
            await view.close()
            if relay is not None:
                await relay.stop()


def schema_env(origin: str) -> dict[str, str]:
    """The proxy reads the chaos upstream's published schemas, as it would Modellix's."""
    return {
        "MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__ENABLED": "true",
        "MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__ORIGIN": origin,
    }
