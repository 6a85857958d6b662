"""Two proxy processes on one PostgreSQL: idempotency and watcher leases hold across them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.postgres import fresh_postgres
from harness.processes import ProxyProcess, start_proxy
from harness.waits import wait_all_terminal
from proxy.simulator import Simulator, SimulatorConfig, build_app

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]
HEADERS = {"Authorization": "Bearer sk-replica-client"}
SUBMIT = "/api/v1/minimax/hailuo-02-t2v"


async def _stack(
    aiohttp_server: ServerFactory, tmp_path: Path, store_url: str
) -> tuple[Simulator, list[ProxyProcess]]:
    sim = Simulator(
        SimulatorConfig(
            pending_seconds=0.3,
            processing_seconds=(1.0, 2.0),
            concurrency_limit=0,
            initial_balance_usd=Decimal(1000),
        )
    )
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    env = proxy_env(sim_url, store_url)
    procs = [await start_proxy(env, tmp_path / f"replica-{i}.log") for i in range(2)]
    return sim, procs


async def test_same_key_on_two_replicas_buys_once(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Concurrent submits with one Idempotency-Key spread over two replicas create one task."""
    async with fresh_postgres() as store_url:
        sim, procs = await _stack(aiohttp_server, tmp_path, store_url)
        try:
            body = {"prompt": "one video only", "duration": 6}
            headers = {**HEADERS, "Idempotency-Key": "shared-key-1"}
            async with aiohttp.ClientSession() as session:

                async def one(proc: ProxyProcess) -> int:
                    async with session.post(f"{proc.url}{SUBMIT}", json=body, headers=headers) as r:
                        await r.read()
                        return r.status

                statuses = await asyncio.gather(*(one(procs[i % 2]) for i in range(20)))
                assert sim.counters.tasks_created == 1
                assert set(statuses) <= {200, 409}
                # Once the first has finished, every replica replays it.
                for proc in procs:
                    async with session.post(f"{proc.url}{SUBMIT}", json=body, headers=headers) as r:
                        assert r.status == 200
                        assert r.headers["Idempotent-Replayed"] == "true"
            assert sim.counters.tasks_created == 1
        finally:
            for proc in procs:
                with contextlib.suppress(Exception):
                    await proc.kill()


async def test_watchers_share_jobs_without_double_polling(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Jobs no client polls reach terminal; no task is polled by both replicas at once."""
    async with fresh_postgres() as store_url:
        sim, procs = await _stack(aiohttp_server, tmp_path, store_url)
        try:
            accepted: list[str] = []
            async with aiohttp.ClientSession() as session:
                for i in range(16):
                    body = {"prompt": f"unwatched {i}", "duration": 6}
                    async with session.post(
                        f"{procs[i % 2].url}{SUBMIT}", json=body, headers=HEADERS
                    ) as resp:
                        assert resp.status == 200
                        accepted.append((await resp.json())["data"]["task_id"])
            jobs = await wait_all_terminal(store_url, accepted)
            pollers = {j.submitted_by for j in jobs}
            assert len(pollers) == 2  # both replicas submitted
            times: dict[str, list[float]] = defaultdict(list)
            for entry in sim.requests(route="poll"):
                times[entry.path.rsplit("/", 1)[1]].append(entry.time)
            assert set(times) == set(accepted)
            for stamps in times.values():
                stamps.sort()
                gaps = [b - a for a, b in itertools.pairwise(stamps)]
                # The cadence never polls one job twice within 0.2 s; two replicas would.
                assert all(gap > 0.2 for gap in gaps), gaps
        finally:
            for proc in procs:
                with contextlib.suppress(Exception):
                    await proc.kill()
