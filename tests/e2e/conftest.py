"""Fixtures: the simulator and a proxy in front of it, both on real loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import settings_for
from proxy.app import create_app
from proxy.config import deep_merge
from proxy.runtime import Runtime
from proxy.simulator import Simulator, SimulatorConfig
from proxy.state import METRICS, RUNTIME
from proxy.telemetry.metrics import Metrics
from tests.support import serve_simulator

ServerFactory = Callable[..., Awaitable[TestServer]]
KEY = "Bearer sk-e2e-secret-key-123456"


@dataclass
class Stack:
    sim: Simulator
    sim_url: str
    proxy_url: str
    runtime: Runtime
    metrics: Metrics
    schema_url: str = ""
    """The simulator's schema origin (``/models/{provider}/{model_id}/api_schema``)."""


@pytest.fixture
async def make_stack(aiohttp_server: ServerFactory) -> Callable[..., Awaitable[Stack]]:
    async def make(
        sim_config: SimulatorConfig | None = None, *, schemas: bool = False, **overrides: Any
    ) -> Stack:
        """``schemas``: the proxy reads the simulator's published schemas."""
        sim = Simulator(sim_config or SimulatorConfig.fast(concurrency_limit=0))
        sim_url, schema_url = await serve_simulator(aiohttp_server, sim)
        if schemas:
            published = {"upstream_schemas": {"enabled": True, "origin": schema_url}}
            overrides = deep_merge(overrides, {"models": published})
        app = create_app(settings_for(sim_url, **overrides))
        proxy_server = await aiohttp_server(app)
        proxy_url = str(proxy_server.make_url("")).rstrip("/")
        return Stack(sim, sim_url, proxy_url, app[RUNTIME], app[METRICS], schema_url)

    return make


@pytest.fixture
async def stack(make_stack: Callable[..., Awaitable[Stack]]) -> Stack:
    return await make_stack()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": KEY}) as session:
        yield session
