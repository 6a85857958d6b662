"""A real Prometheus scrapes the live proxy: every dashboard and rule expression runs on it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dashboards.expressions import RULE_FILES, all_expressions
from harness.ports import free_ports
from proxy.telemetry.tracing import Tracing
from tests.observability.conftest import LiveStack, LiveStackFactory
from tests.observability.traffic import round_of_traffic
from tests.support import required_binary

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
JOB = "modellix-proxy"
STARTUP_S = 30.0
DATA_S = 40.0
# Panels that must show data once traffic has run (sources as all_expressions() names them).
KEY_PANELS = (
    "operations.json: Request rate by route and code [A]",
    "operations.json: Jobs submitted by model [A]",
    "operations.json: Time to terminal P50/P95 by model [B]",
    "operations.json: Rejections by reason [A]",
    "operations.json: Upstream latency P95 by operation [A]",
    "operations.json: Request duration P95 by route [A]",
    "operations.json: Retries by reason [A]",
    "operations.json: Upstream errors by class [A]",
    "finance.json: Cost per job P50 and P95 by model [B]",
    "finance.json: Spend rate by model (USD per hour) [A]",
    "finance.json: Spend in range [A]",
    "finance.json: Saved by refused inputs today [A]",
    "finance.json: Spend today [A]",
    "modellix-proxy.yml: job:modellix_proxy_job_failure:ratio_rate5m",
)


@dataclass
class Prometheus:
    """A Prometheus server on loopback, started for one test."""

    process: subprocess.Popen[bytes]
    url: str


@contextlib.contextmanager
def prometheus_scraping(admin_port: int, workdir: Path) -> Iterator[Prometheus]:
    """Run Prometheus (1 s scrapes, our rules loaded) against the admin listener; stop by PID."""
    binary = required_binary("prometheus", "apt-get install prometheus")
    rules = ", ".join(f"'{path}'" for path in RULE_FILES)
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{rules}]\n"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{admin_port}']}}]\n",
        encoding="utf-8",
    )
    port = free_ports(1)[0]
    with (workdir / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--enable-feature=exemplar-storage",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Prometheus(process, f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def query(http: aiohttp.ClientSession, prom: Prometheus, expr: str) -> dict[str, Any]:
    """An instant query through the HTTP API; the whole JSON answer (a starting Prometheus
    answers plain text, returned as a non-success status so callers wait on)."""
    async with http.get(f"{prom.url}/api/v1/query", params={"query": expr}) as resp:
        text = await resp.text()
    try:
        doc: dict[str, Any] = json.loads(text)
    except ValueError:
        return {"status": f"not JSON (HTTP {resp.status})", "text": text[:200]}
    return doc


def has_numbers(doc: dict[str, Any]) -> bool:
    """Whether a query answer holds at least one real (not NaN) sample."""
    if doc.get("status") != "success":
        return False
    data = doc["data"]
    if data["resultType"] == "scalar":
        return not math.isnan(float(data["result"][1]))
    return any(not math.isnan(float(item["value"][1])) for item in data["result"])


async def wait_until(
    http: aiohttp.ClientSession, prom: Prometheus, expr: str, within: float
) -> None:
    """Poll an expression until it has a real sample; fail with the last answer."""
    last: dict[str, Any] = {}
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            while True:
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    last = await query(http, prom, expr)
                    if has_numbers(last):
                        return
                await asyncio.sleep(0.25)
    raise AssertionError(f"no data for {expr!r} within {within}s: {last}")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def traffic_until(stop: asyncio.Event, stack: LiveStack, http: aiohttp.ClientSession) -> int:
    """Keep jobs (each submit retried once after a 503), refusals and pass-through flowing."""
    rounds = 0
    while not stop.is_set():
        stack.sim.inject("503", count=1, route="submit")
        await round_of_traffic(http, stack.proxy_url)
        rounds += 1
    return rounds


async def test_dashboards_and_rules_run_on_real_prometheus(
    make_live: LiveStackFactory, http: aiohttp.ClientSession, tmp_path: Path, traced: Tracing
) -> None:
    """Prometheus scrapes the proxy; every expression parses and the key panels show data."""
    started = time.monotonic()
    stack = await make_live(tracing=traced, watcher={"enabled": True, "tick_seconds": 0.2})
    assert stack.running.admin_port is not None
    with prometheus_scraping(stack.running.admin_port, tmp_path) as prom:
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            traffic = group.create_task(traffic_until(stop, stack, http))
            try:
                await wait_until(http, prom, f'up{{job="{JOB}"}} == 1', STARTUP_S)
                sources = {e.source: e.expr for e in all_expressions()}
                for source in KEY_PANELS:
                    await wait_until(http, prom, sources[source], DATA_S)
            finally:
                stop.set()
        assert traffic.result() > 0
        failures = []
        for expression in all_expressions():
            answer = await query(http, prom, expression.expr)
            if answer.get("status") != "success":
                failures.append(f"{expression.source}: {answer.get('error')}")
        assert failures == [], "\n".join(failures)
        now = time.time()
        async with http.get(
            f"{prom.url}/api/v1/query_exemplars",
            params={
                "query": "modellix_proxy_http_request_duration_seconds_bucket",
                "start": str(now - 300),
                "end": str(now + 60),
            },
        ) as resp:
            exemplars = (await resp.json())["data"]
        trace_ids = {e["labels"]["trace_id"] for s in exemplars for e in s["exemplars"]}
        assert trace_ids, "Prometheus stored no exemplars with a trace id"
        assert all(len(t) == 32 for t in trace_ids)
    print(f"real-Prometheus run took {time.monotonic() - started:.1f}s")
