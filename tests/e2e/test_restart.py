"""A proxy killed with SIGKILL mid-run loses no accepted job, and its jobs still finish."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import WATCHER_KEY, proxy_env
from harness.processes import start_proxy
from harness.waits import wait_all_terminal
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.stores import open_store
from proxy.stores.records import JobStatus

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = pytest.mark.slow


async def test_sigkill_mid_run_then_restart(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    """Every submit answered 200 before the kill is in the ledger and reaches a terminal state."""
    sim = Simulator(
        SimulatorConfig(
            pending_seconds=0.5,
            processing_seconds=(1.0, 2.0),
            concurrency_limit=0,
            initial_balance_usd=Decimal(1000),
            api_keys={"sk-client": "default", WATCHER_KEY: "default"},
        )
    )
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    store_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = proxy_env(sim_url, store_url)
    first = await start_proxy(env, tmp_path / "first.log")
    accepted: list[str] = []
    enough = asyncio.Event()
    headers = {"Authorization": "Bearer sk-client"}

    async def client(session: aiohttp.ClientSession, i: int) -> None:
        body = {"prompt": f"shot {i}", "duration": 6, "resolution": "768P"}
        for n in range(1000):
            try:
                async with session.post(
                    f"{first.url}/api/v1/minimax/hailuo-02-t2v", json=body, headers=headers
                ) as resp:
                    if resp.status == 200:
                        accepted.append((await resp.json())["data"]["task_id"])
                        if len(accepted) >= 20:
                            enough.set()
            except aiohttp.ClientError:
                return
            body = {**body, "prompt": f"shot {i}-{n}"}

    async with aiohttp.ClientSession() as session:
        clients = [asyncio.get_running_loop().create_task(client(session, i)) for i in range(4)]
        async with asyncio.timeout(20):
            await enough.wait()
        await first.kill()  # SIGKILL while submits are in flight
        await asyncio.gather(*clients, return_exceptions=True)
    assert accepted

    store = await open_store(store_url)
    try:
        for task_id in accepted:
            assert await store.get_job(task_id) is not None, task_id
    finally:
        await store.close()

    second = await start_proxy(env, tmp_path / "second.log")
    try:
        jobs = await wait_all_terminal(store_url, accepted)
        assert all(j.status is JobStatus.SUCCESS for j in jobs)
    finally:
        with contextlib.suppress(Exception):
            await second.kill()
    # Every task the upstream created for an accepted submit is one the ledger knows.
    sim.settle()
    created = set(sim.tasks)
    assert set(accepted) <= created
