"""Shared fixtures for the observability tests: promtool, a live proxy stack, spans, logs."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness.config import settings_for
from proxy.app import create_app
from proxy.server import Running, start
from proxy.simulator import Simulator, SimulatorConfig
from proxy.state import RUNTIME, TRACING
from proxy.stores.base import Store
from proxy.telemetry.logging import configure_logging
from proxy.telemetry.tracing import Tracing, setup_tracing
from tests.support import SIMULATOR_HAILUO_PRICES, required_binary, serve_simulator

ServerFactory = Callable[..., Awaitable[TestServer]]

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; tests needing it are skipped only when it is not installed."""
    return required_binary("promtool", "apt-get install prometheus")


def run_promtool(promtool: str, *args: str, stdin: str | None = None) -> None:
    """Run promtool and fail the test with its output when it exits non-zero."""
    done = subprocess.run(
        [promtool, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


# --- a live proxy (client and admin listeners) in front of the simulator -------------------


@dataclass
class LiveStack:
    """The simulator and a started proxy with its admin listener, all on loopback."""

    sim: Simulator
    sim_url: str
    running: Running
    schema_url: str = ""
    """The simulator's schema origin (``/models/{provider}/{model_id}/api_schema``)."""

    @property
    def proxy_url(self) -> str:
        return self.running.base_url

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.running.admin_port}"

    @property
    def app(self) -> web.Application:
        return self.running.app

    @property
    def tracing(self) -> Tracing:
        return self.running.app[TRACING]

    @property
    def store(self) -> Store:
        store = self.running.app[RUNTIME].store
        assert store is not None
        return store


LiveStackFactory = Callable[..., Awaitable[LiveStack]]


@pytest.fixture
async def make_live(aiohttp_server: ServerFactory) -> AsyncIterator[LiveStackFactory]:
    """Start simulator + proxy with admin listener; ``tracing``/``environ`` shape the traces."""
    started: list[Running] = []

    async def make(
        sim_config: SimulatorConfig | None = None,
        *,
        tracing: Tracing | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> LiveStack:
        sim = Simulator(sim_config or SimulatorConfig.fast(concurrency_limit=0))
        # No access log for the simulator: it stands in for the external API, whose logs
        # (query strings with keys in them included) are not the proxy's.
        sim_url, schema_url = await serve_simulator(aiohttp_server, sim, access_log=None)
        admin = {"enabled": True, "host": "127.0.0.1", "port": 0}
        # Exact Hailuo figures (the finance panels, spans counted per upstream call): an
        # operator table at the simulator's prices; other models price from the upstream list.
        overrides.setdefault("pricing", SIMULATOR_HAILUO_PRICES)
        settings = settings_for(sim_url, **{"admin": admin, **overrides})
        app = create_app(settings, tracing=tracing, environ=environ)
        running = await start(settings, app)
        started.append(running)
        return LiveStack(sim, sim_url, running, schema_url)

    yield make
    for running in reversed(started):
        await running.stop()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """An in-memory span exporter."""
    return InMemorySpanExporter()


@pytest.fixture
def traced(spans: InMemorySpanExporter) -> Iterator[Tracing]:
    """Tracing that exports every finished span synchronously to ``spans``."""
    tracing = setup_tracing("modellix-proxy", {}, exporter=spans)
    yield tracing
    tracing.shutdown()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """structlog configured as the CLI does (JSON, debug level), writing to a buffer."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    yield stream
    structlog.reset_defaults()


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every JSON log line written so far."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
