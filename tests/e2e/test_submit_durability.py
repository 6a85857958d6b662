"""SIGKILL during a flood of submits on group-committed SQLite: every answered job is on disk.

32 clients submit as fast as the proxy answers; once at least 60 submits have been
answered, the proxy is killed with SIGKILL while the rest are in flight. Opening the
ledger afterwards:

- every task id a client was given is a job in the ledger (durable before its answer);
- every task the simulator created is a job or still has its write-ahead intent (which
  recovery turns into an ``unknown`` record): nothing bought is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.processes import start_proxy
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.stores import open_store

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = pytest.mark.slow

UPSTREAM_KEY = "sk-upstream-for-durability"
SUBMIT = "/api/v1/minimax/hailuo-02-t2v"
CLIENTS = 32
KILL_AFTER = 60
MAX_SUBMITS = 2000  # a bound on the load loop, far above what is sent before the kill


async def test_sigkill_mid_flood_loses_no_answered_or_bought_job(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    sim = Simulator(
        SimulatorConfig(
            pending_seconds=30,
            processing_seconds=(30, 40),
            concurrency_limit=0,
            initial_balance_usd=Decimal(100_000),
            api_keys={UPSTREAM_KEY: "default"},
        )
    )
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    store_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = proxy_env(
        sim_url,
        store_url,
        MODELLIX_PROXY_UPSTREAM__API_KEY=UPSTREAM_KEY,
        MODELLIX_PROXY_WATCHER__ENABLED="false",
    )
    proc = await start_proxy(env, tmp_path / "proxy.log")
    answered: list[str] = []
    enough = asyncio.Event()
    sent = 0
    auth = {"Authorization": f"Bearer {UPSTREAM_KEY}"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def client() -> None:
            nonlocal sent
            while sent < MAX_SUBMITS:
                sent += 1
                body = {"prompt": f"shot {sent}", "duration": 6, "resolution": "768P"}
                try:
                    async with session.post(f"{proc.url}{SUBMIT}", json=body, headers=auth) as r:
                        if r.status != 200:
                            continue
                        doc = await r.json()
                except (TimeoutError, aiohttp.ClientError):
                    return  # the proxy is gone
                answered.append(doc["data"]["task_id"])
                if len(answered) >= KILL_AFTER:
                    enough.set()

        clients = [asyncio.ensure_future(client()) for _ in range(CLIENTS)]
        try:
            async with asyncio.timeout(60):
                await enough.wait()
            await proc.kill(signal.SIGKILL)
            async with asyncio.timeout(30):
                await asyncio.gather(*clients)
        finally:
            for task in clients:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*clients, return_exceptions=True)
            await proc.kill()

    created = set(sim.accounts.tasks)
    store = await open_store(store_url)
    try:
        page = await store.list_jobs(limit=10_000)
        intents = await store.list_intents(limit=10_000)
    finally:
        await store.close()
    in_ledger = {job.task_id for job in page.jobs}
    missing_answered = set(answered) - in_ledger
    assert not missing_answered, f"{len(missing_answered)} answered jobs not on disk"
    # A task without a job row can only be one whose intent was open at the kill.
    not_recorded = created - in_ledger
    assert len(not_recorded) <= len(intents), (len(not_recorded), len(intents))
    assert in_ledger <= created  # and the ledger invents nothing
    print(
        f"answered {len(answered)}, created upstream {len(created)}, in the ledger "
        f"{len(in_ledger)}, open intents {len(intents)}"
    )
