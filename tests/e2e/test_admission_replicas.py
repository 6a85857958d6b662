"""The admission queue across two replicas on PostgreSQL: kill -9 of the dispatcher's holder.

The survivor takes the dispatcher lease over; every queued submit ends dispatched (its
job terminal) or ``unknown`` (the dead replica was sending it); nothing is bought twice
and no reservation is left held by anyone but an ``unknown`` record.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.postgres import fresh_postgres
from harness.processes import ProxyProcess, start_proxy
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.stores import open_store
from proxy.stores.admission_records import QueueState
from proxy.stores.records import JobStatus
from tests.e2e.admission_support import BODY, SUBMIT, UPSTREAM_KEY, queue_env, virtual_key

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = pytest.mark.postgres
SUBMITS = 24
ADMIN = "admin-token-for-admission-tests"


async def _lease_holder(store_url: str) -> str | None:
    store = await open_store(store_url)
    try:
        async with store._read() as tx:  # type: ignore[attr-defined]
            row = await tx.fetchrow("SELECT owner FROM leases WHERE name = 'admission-dispatcher'")
    finally:
        await store.close()
    return None if row is None else str(row["owner"])


async def _dispatching(store_url: str, procs: tuple[ProxyProcess, ProxyProcess]) -> ProxyProcess:
    """The process that holds the dispatcher lease (waiting for one to take it)."""
    by_id = {f"{socket.gethostname()}:{p.process.pid}": p for p in procs}
    async with asyncio.timeout(20):
        while True:
            holder = await _lease_holder(store_url)
            if holder in by_id:
                return by_id[holder]
            await asyncio.sleep(0.1)


async def test_kill_the_dispatcher_replica_mid_batch(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """SIGKILL the replica holding the dispatcher lease while jobs are queued: the other
    takes over, every submit ends dispatched or unknown, none bought twice, nothing leaked."""
    sim = Simulator(
        SimulatorConfig(
            pending_seconds=0.1,
            processing_seconds=(0.3, 0.5),
            concurrency_limit=3,
            initial_balance_usd=Decimal(1000),
            api_keys={UPSTREAM_KEY: "default"},
        )
    )
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    async with fresh_postgres() as store_url:
        env = proxy_env(
            sim_url,
            store_url,
            **queue_env(UPSTREAM_KEY),
            MODELLIX_PROXY_ADMIN__TOKEN=ADMIN,
            MODELLIX_PROXY_GOVERNANCE__BUDGETS=(
                "[{name: all, scope: global, window: month, limit_usd: 500}]"
            ),
        )
        first = await start_proxy(env, tmp_path / "first.log")
        second: ProxyProcess | None = None
        try:
            second = await start_proxy(env, tmp_path / "second.log")
            store = await open_store(store_url)
            try:
                tokens = [
                    (await virtual_key(store, team="studio", max_concurrent_jobs=50))[1]
                    for _ in range(2)
                ]
            finally:
                await store.close()
            async with aiohttp.ClientSession() as http:

                async def send(i: int) -> int:
                    proc = (first, second)[i % 2]
                    assert proc is not None
                    headers = {"Authorization": f"Bearer {tokens[i % 2]}"}
                    body = {**BODY, "prompt": f"shot {i}"}
                    async with http.post(f"{proc.url}{SUBMIT}", json=body, headers=headers) as r:
                        return r.status

                statuses = await asyncio.gather(*(send(i) for i in range(SUBMITS)))
            assert Counter(statuses) == {200: SUBMITS}
            victim = await _dispatching(store_url, (first, second))
            survivor = second if victim is first else first
            assert survivor is not None
            async with asyncio.timeout(20):  # mid-batch: some sent, most still queued
                await sim.wait_until(lambda: sim.counters.tasks_created >= 5)
            await victim.kill()

            store = await open_store(store_url)
            try:
                async with asyncio.timeout(60):
                    while True:
                        rows = await store.admission_rows()
                        jobs = (await store.list_jobs(limit=200)).jobs
                        waiting = [r for r in rows if r.state.waiting]
                        open_jobs = [
                            j for j in jobs if not j.terminal and j.status is not JobStatus.UNKNOWN
                        ]
                        if not waiting and not open_jobs and not await store.list_intents():
                            break
                        await asyncio.sleep(0.2)
                held = await store.open_reservations()
            finally:
                await store.close()
            admin = f"http://127.0.0.1:{survivor.admin_port}/admin/admission?state=unknown"
            async with (
                aiohttp.ClientSession() as http,
                http.get(admin, headers={"Authorization": f"Bearer {ADMIN}"}) as r,
            ):
                assert r.status == 200
                listed = (await r.json())["rows"]
        finally:
            for proc in (first, second):
                if proc is not None:
                    await proc.kill()
    states = Counter(r.state for r in rows)
    assert len(listed) == states[QueueState.UNKNOWN]
    assert all(row["task_id"].startswith("unknown:") for row in listed)
    assert set(states) <= {QueueState.DISPATCHED, QueueState.UNKNOWN}, states
    created = [t.body.get("prompt") for t in sim.tasks.values()]
    assert len(created) == len(set(created)) == sim.counters.tasks_created  # none bought twice
    by_status = Counter(j.status for j in jobs)
    real = [j for j in jobs if j.status is not JobStatus.UNKNOWN]
    unknown = [j for j in jobs if j.status is JobStatus.UNKNOWN]
    assert {j.task_id for j in real} <= set(sim.tasks)  # every job is a real task
    # every task the simulator created is a job, or one of the unknown records stands for it
    assert len(sim.tasks) - len(real) <= len(unknown)
    assert len(real) + len(unknown) == SUBMITS  # every submit ended in the ledger
    assert all(j.terminal for j in real)
    assert sim.snapshot()["max_active"]["default"] <= 3
    # no reservation leaked: what is still held belongs to an unknown record
    assert all((h.task_id or "").startswith("unknown:") for h in held), held
    assert len(held) == len([j for j in unknown if j.reservation_id])
    print(
        f"\nkill -9 of the dispatcher: queue rows {dict(states)}, jobs {dict(by_status)},"
        f" created upstream {len(sim.tasks)}, reservations held {len(held)}"
    )
