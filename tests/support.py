"""Shared test helpers: settings pointed at a given upstream, a recording echo upstream, the
bounds every wait in the suite is derived from, and the one condition wait."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.config import RetrySettings, Settings, deep_merge, load
from proxy.simulator import Simulator, SimulatorConfig, build_app, build_schema_app
from tests.ci_skips import in_ci

# An operator price table at the simulator's own Hailuo prices, for tests that need an exact
# estimate from ``pricing.models`` (the shipped default is empty: prices come from the
# upstream's model list, which gives Hailuo a min/max range).
_HAILUO = {"unit": "per_second", "usd_by_resolution": {"768P": "0.054", "1080P": "0.12"}}
SIMULATOR_HAILUO_PRICES: dict[str, Any] = {
    "models": {
        slug: _HAILUO
        for slug in (
            "minimax/hailuo-02-t2v",
            "minimax/hailuo-02-i2v",
            "minimax/hailuo-02-fl2v",
            "minimax/hailuo-2.3-t2v",
            "minimax/hailuo-2.3-i2v",
        )
    }
}


def settings_for(origin: str, **overrides: Any) -> Settings:
    """Settings for a proxy in front of ``origin``, on ephemeral ports, no admin listener."""
    base: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "admin": {"enabled": False},
        "upstream": {
            "origin": origin,
            "retry": {"base_delay_seconds": 0.01, "max_delay_seconds": 0.05},
        },
        "logging": {"level": "warning"},
        "store": {"url": "sqlite:///:memory:"},
        "watcher": {"enabled": False},
        # no model-list fetch at start: tests count what reaches the upstream (on need only)
        # no published schemas unless a test names the simulator's schema origin
        "models": {
            "upstream_list": {"fetch_at_start": False},
            "upstream_schemas": {"enabled": False},
        },
    }
    merged = deep_merge(base, overrides)
    settings = load(None, {})
    return Settings.model_validate(deep_merge(settings.model_dump(mode="python"), merged))


async def serve_simulator(
    aiohttp_server: Callable[..., Awaitable[TestServer]], sim: Simulator, **kwargs: Any
) -> tuple[str, str]:
    """Serve ``sim``'s API and schema origins on loopback; their origins, no trailing slash."""
    api = await aiohttp_server(build_app(sim), **kwargs)
    schemas = await aiohttp_server(build_schema_app(sim), **kwargs)
    return str(api.make_url("")).rstrip("/"), str(schemas.make_url("")).rstrip("/")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body_len: int
    body_sha: str


@dataclass
class EchoUpstream:
    """An upstream that records what reached it and answers with what the test asks."""

    seen: list[Seen] = field(default_factory=list)
    handlers: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = field(
        default_factory=dict
    )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_chunked(1 << 16):
            digest.update(chunk)
            size += len(chunk)
        self.seen.append(
            Seen(request.method, request.raw_path, dict(request.headers), size, digest.hexdigest())
        )
        for prefix, handler in self.handlers.items():
            if request.path.startswith(prefix):
                return await handler(request)
        return web.json_response(
            {
                "code": 0,
                "message": "success",
                "data": {
                    "method": request.method,
                    "path": request.raw_path,
                    "size": size,
                    "sha256": digest.hexdigest(),
                },
            }
        )


def required_binary(name: str, install: str = "") -> str:
    """The path of ``name``. Missing, the test is skipped on a workstation but fails in CI
    (``CI`` set), where ``make test`` installs everything the suite needs."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed" + (f" ({install})" if install else "")
    if in_ci():
        pytest.fail(message + ": CI must provide it")
    pytest.skip(message)


# Bounds for waits. A wait is bounded by what the thing waited on needs on an idle machine
# times LOAD: the suite runs on a loaded 2-core machine (CI beside other jobs, a laptop
# building), where an idle-machine figure ~4x over is still normal. A bound only decides how
# long a failing test takes to say so; a passing test never waits it out. So bounds are
# generous, named for what they cover, and never a tight fixed cap.
LOAD = float(os.environ.get("TEST_LOAD_FACTOR", "5"))
SHORT_WAIT_S = 3.0 * LOAD
"""An in-process consequence of something already done: a log line, a gauge, a background
loop's next round at test intervals, a task of the ``fast`` simulator preset finishing."""
REQUEST_S = 4.0 * LOAD
"""One HTTP exchange through the proxy and the simulator, without an upstream retry wait."""
PROCESS_START_S = 6.0 * LOAD
"""A Python process importing the proxy, migrating its store and listening (~2-4 s idle)."""
RETRY_BUDGET_S = RetrySettings().total_seconds
"""The longest the proxy retries one upstream call. It honours the wait a 429 asks for
(``X-RateLimit-Reset``: the simulator's is the next minute boundary, up to 60 s away) while it
fits this budget, so one submit or poll can take this long before it answers."""


def bound_for(sim: SimulatorConfig, tasks: int = 1) -> float:
    """How long ``tasks`` tasks submitted together to ``sim`` can take to be terminal through
    the proxy: their lifecycle (pending, longest processing, a stall, the team's concurrency
    limit running them in rounds) on a loaded machine, plus one retry budget when ``sim``
    answers request faults (a 429's reset wait; retries of 5xx are short)."""
    lifecycle = sim.pending_seconds + sim.processing_seconds[1]
    rounds = -(-tasks // sim.concurrency_limit) if sim.concurrency_limit else 1
    bound = rounds * lifecycle * LOAD + SHORT_WAIT_S
    if sim.rate_stall:
        bound += sim.stall_seconds
    faults = sim.rate_429 + sim.rate_500 + sim.rate_503 + sim.rate_malformed + sim.rate_stall
    if faults:
        bound += RETRY_BUDGET_S
    return bound


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]],
    within: float = SHORT_WAIT_S,
    what: str = "condition",
) -> None:
    """Wait until ``check()`` (a plain or an async predicate) holds, polling every 20 ms; fail
    after ``within`` seconds, naming ``what`` was waited for. For state with no change feed to
    await (a store, a registry, /proc); an event or a future is awaited directly instead."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        answer = check()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {within:.0f} s")
        await asyncio.sleep(0.02)


def envelope(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    assert isinstance(doc, dict)
    return doc


PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@asynccontextmanager
async def fresh_postgres(prefix: str = "test_e2e") -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database (``<prefix>_<random>``), dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
