"""A proxy killed with SIGKILL while submits wait on the upstream: nothing bought is lost.

Every task the simulator created is a job in the ledger or is covered by an
``unknown`` record; after a restart the dead process's concurrency slots and the
reservations of its unsent requests are freed within one lease, the money of the
``unknown`` records stays held, and the admin API resolves them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.processes import ProxyProcess, start_proxy
from harness.waits import REQUEST_S, wait_all_terminal, wait_until
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.stores import open_store
from proxy.stores.records import JobStatus

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = pytest.mark.slow

UPSTREAM_KEY = "sk-upstream-for-crash-tests"
ADMIN = "admin-token-for-crash-tests"
SUBMIT = "/api/v1/minimax/hailuo-02-t2v"
IN_FLIGHT = 6


def _admin(proc: ProxyProcess) -> tuple[str, dict[str, str]]:
    return f"http://127.0.0.1:{proc.admin_port}", {"Authorization": f"Bearer {ADMIN}"}


async def _key(session: aiohttp.ClientSession, proc: ProxyProcess, **fields: Any) -> str:
    url, auth = _admin(proc)
    async with session.post(f"{url}/admin/keys", json=fields, headers=auth) as resp:
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["key"])


async def test_sigkill_while_submits_wait_upstream(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Stalled submits, then SIGKILL: each created task is a job or an unknown record; a
    restart frees the slots within a lease; reconcile attaches the task and settles it."""
    sim = Simulator(
        SimulatorConfig(
            pending_seconds=0.2,
            processing_seconds=(0.3, 0.5),
            concurrency_limit=0,
            initial_balance_usd=Decimal(1000),
            api_keys={UPSTREAM_KEY: "default"},
            stall_seconds=60,
        )
    )
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    store_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = proxy_env(
        sim_url,
        store_url,
        MODELLIX_PROXY_ADMIN__TOKEN=ADMIN,
        MODELLIX_PROXY_KEYS__MODE="virtual",
        MODELLIX_PROXY_UPSTREAM__API_KEY=UPSTREAM_KEY,
        MODELLIX_PROXY_RECOVERY__LEASE_SECONDS="2",
        MODELLIX_PROXY_RECOVERY__HEARTBEAT_SECONDS="0.5",
        MODELLIX_PROXY_GOVERNANCE__BUDGETS=(
            "[{name: all, scope: global, window: month, limit_usd: 500}]"
        ),
    )
    first = await start_proxy(env, tmp_path / "first.log")
    second: ProxyProcess | None = None
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            key = await _key(session, first, team="studio", max_concurrent_jobs=IN_FLIGHT)
            auth = {"Authorization": f"Bearer {key}"}

            async def submit(i: int, proc: ProxyProcess) -> int:
                body = {"prompt": f"[sim:stall] shot {i}", "duration": 6, "resolution": "768P"}
                headers = {**auth, "Idempotency-Key": f"shot-{i}"}
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.post(f"{proc.url}{SUBMIT}", json=body, headers=headers) as r:
                        return r.status
                return -1

            sent = [
                asyncio.get_running_loop().create_task(submit(i, first)) for i in range(IN_FLIGHT)
            ]
            await wait_until(lambda: sim.counters.tasks_created >= IN_FLIGHT, REQUEST_S)  # all sent
            await first.kill()
            assert set(await asyncio.gather(*sent)) == {-1}  # nobody was answered

            second = await start_proxy(env, tmp_path / "second.log")
            url, admin_auth = _admin(second)
            async with asyncio.timeout(20):  # within a lease the sweep has run
                while True:
                    async with session.get(f"{url}/admin/intents", headers=admin_auth) as r:
                        intents = (await r.json())["intents"]
                    if not intents:
                        break
                    await asyncio.sleep(0.1)

            store = await open_store(store_url)
            try:
                page = await store.list_jobs(limit=100)
            finally:
                await store.close()
            unknown = [j for j in page.jobs if j.status is JobStatus.UNKNOWN]
            assert len(unknown) == IN_FLIGHT == sim.counters.tasks_created
            assert {j.idempotency_key for j in unknown} == {f"shot-{i}" for i in range(IN_FLIGHT)}

            # The money of the unknown records is held; no replica holds anything.
            async with session.get(f"{url}/admin/reservations", headers=admin_auth) as r:
                held = (await r.json())["reservations"]
            assert len(held) == IN_FLIGHT
            assert all("job" in h["held_by"] for h in held)

            # The slots are free: the key can have IN_FLIGHT jobs in flight again.
            retry_same_key = {**auth, "Idempotency-Key": "shot-0"}
            body = {"prompt": "[sim:stall] shot 0", "duration": 6, "resolution": "768P"}
            async with session.post(
                f"{second.url}{SUBMIT}", json=body, headers=retry_same_key
            ) as r:
                assert r.status == 409  # never resent: its outcome is unknown
                assert (await r.json())["task_id"].startswith("unknown:")
            fresh = [
                session.post(
                    f"{second.url}{SUBMIT}",
                    json={"prompt": f"new {i}", "duration": 6, "resolution": "768P"},
                    headers=auth,
                )
                for i in range(IN_FLIGHT)
            ]
            statuses = []
            for request in fresh:
                async with request as r:
                    statuses.append(r.status)
            assert statuses == [200] * IN_FLIGHT

            # An operator attaches the task one unknown record stood for: it settles.
            record = unknown[0]
            task_id = next(iter(sim.tasks))  # the operator looked it up upstream
            async with session.post(
                f"{url}/admin/jobs/{record.task_id}/reconcile",
                json={"task_id": task_id},
                headers=admin_auth,
            ) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["status"] == "pending"
            jobs = await wait_all_terminal(store_url, [task_id])
            assert jobs[0].status is JobStatus.SUCCESS
            # settled at what the upstream charged for the task, not at the reservation
            assert jobs[0].final_cost_micros == sim.accounts.tasks[task_id].cost_micros
            assert jobs[0].cost_source == "charge"
        finally:
            for proc in (first, second):
                if proc is not None:
                    with contextlib.suppress(Exception):
                        await proc.kill()
