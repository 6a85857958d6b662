"""Real proxy processes: retention purges expired rows; jobs the watcher cannot poll are visible."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from harness.config import proxy_env
from harness.processes import ProxyProcess, start_proxy
from harness.waits import wait_all_terminal
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.stores import open_store
from proxy.stores.records import JobStatus
from tests.stores.helpers import raw_query

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = pytest.mark.slow

CLIENT = {"Authorization": "Bearer sk-client"}
SUBMIT = "/api/v1/minimax/hailuo-02-t2v"
WITHOUT_CREDENTIAL = "modellix_proxy_jobs_without_credential"


async def _simulator(aiohttp_server: ServerFactory, **config: object) -> str:
    sim = Simulator(
        SimulatorConfig(
            concurrency_limit=0,
            initial_balance_usd=Decimal(1000),
            api_keys={"sk-client": "default"},
            **config,
        )
    )
    return str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")


async def _metric(
    session: aiohttp.ClientSession, proxy: ProxyProcess, name: str, **labels: str
) -> float | None:
    async with session.get(f"http://127.0.0.1:{proxy.admin_port}/metrics") as resp:
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def _until_metric(
    session: aiohttp.ClientSession,
    proxy: ProxyProcess,
    name: str,
    test: Callable[[float | None], bool],
    within: float = 20.0,
    **labels: str,
) -> float | None:
    async with asyncio.timeout(within):
        while True:
            value = await _metric(session, proxy, name, **labels)
            if test(value):
                return value
            await asyncio.sleep(0.1)


async def _submit(
    session: aiohttp.ClientSession, proxy: ProxyProcess, i: int, **headers: str
) -> str:
    body = {"prompt": f"shot {i}", "duration": 6, "resolution": "768P"}
    async with session.post(
        f"{proxy.url}{SUBMIT}", json=body, headers={**CLIENT, **headers}
    ) as resp:
        assert resp.status == 200, await resp.text()
        task_id: str = (await resp.json())["data"]["task_id"]
    return task_id


async def test_running_proxy_purges_expired_keys_and_old_refusals(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Idempotency keys past their TTL and refusals past retention are deleted by the proxy."""
    sim_url = await _simulator(aiohttp_server, pending_seconds=0.1, processing_seconds=(0.1, 0.2))
    store_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = proxy_env(
        sim_url,
        store_url,
        MODELLIX_PROXY_IDEMPOTENCY__TTL_SECONDS="1",
        MODELLIX_PROXY_RETENTION__REFUSALS_SECONDS="1",
        MODELLIX_PROXY_RETENTION__INTERVAL_SECONDS="0.3",
    )
    proxy = await start_proxy(env, tmp_path / "proxy.log")
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(3):
                await _submit(session, proxy, i, **{"Idempotency-Key": f"key-{i}"})
            async with session.post(f"{proxy.url}{SUBMIT}", json={"prompt": "x"}) as resp:
                assert resp.status == 401
            assert await raw_query(store_url, "SELECT COUNT(*) FROM idempotency_keys") == [(3,)]
            assert await raw_query(store_url, "SELECT COUNT(*) FROM refusals") == [(1,)]
            purged = await _until_metric(
                session,
                proxy,
                "modellix_proxy_retention_purged_rows_total",
                lambda v: v is not None and v >= 3,
                table="idempotency_keys",
            )
            assert purged == 3
            await _until_metric(
                session,
                proxy,
                "modellix_proxy_retention_purged_rows_total",
                lambda v: v == 1,
                table="refusals",
            )
            last = await _metric(
                session, proxy, "modellix_proxy_retention_last_success_timestamp_seconds"
            )
            assert last is not None
            assert last > 0
        assert await raw_query(store_url, "SELECT COUNT(*) FROM idempotency_keys") == [(0,)]
        assert await raw_query(store_url, "SELECT COUNT(*) FROM refusals") == [(0,)]
    finally:
        await proxy.kill()


def _log_events(log: Path, event: str) -> list[dict[str, object]]:
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("event") == event:
                lines.append(entry)
    return lines


async def _rescheduled(store_url: str, task_ids: list[str], times: int, within: float) -> None:
    """Wait until the watcher has leased and put back every job at least ``times`` times."""
    seen: dict[str, set[float]] = {t: set() for t in task_ids}
    store = await open_store(store_url)
    try:
        async with asyncio.timeout(within):
            while min(len(s) for s in seen.values()) < times + 1:
                for task_id in task_ids:
                    job = await store.get_job(task_id)
                    assert job is not None
                    assert job.next_poll_at is not None
                    seen[task_id].add(job.next_poll_at)
                await asyncio.sleep(0.05)
    finally:
        await store.close()


async def test_restart_without_watcher_key_shows_unpollable_jobs(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """After a restart without a watcher key, open jobs are counted and logged once each;
    one client poll makes its key usable again, the watcher settles the job, the gauge drops."""
    sim_url = await _simulator(aiohttp_server, pending_seconds=2.0, processing_seconds=(6.0, 6.5))
    store_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = proxy_env(sim_url, store_url, MODELLIX_PROXY_WATCHER__CLIENT_GRACE_SECONDS="0.5")
    del env["MODELLIX_PROXY_UPSTREAM__API_KEY"]
    first = await start_proxy(env, tmp_path / "first.log")
    async with aiohttp.ClientSession() as session:
        task_ids = [await _submit(session, first, i) for i in range(3)]
        await first.kill()
        second = await start_proxy(env, tmp_path / "second.log")
        try:
            await _until_metric(session, second, WITHOUT_CREDENTIAL, lambda v: v == 3)
            await _rescheduled(store_url, task_ids, times=3, within=20)
            lines = _log_events(second.log, "watcher.job_without_credential")
            assert sorted(str(e["task_id"]) for e in lines) == sorted(task_ids)
            for entry in lines:
                assert entry["model"] == "minimax/hailuo-02-t2v"
                assert {"team", "submitted_at"} <= set(entry)
            store = await open_store(store_url)
            try:
                for task_id in task_ids:  # nothing polled them: no key to poll with
                    job = await store.get_job(task_id)
                    assert job is not None
                    assert job.watcher_polls == 0
                    assert not job.terminal
            finally:
                await store.close()
            for task_id in task_ids:  # one poll each, before the upstream finishes
                async with session.get(
                    f"{second.url}/api/v1/tasks/{task_id}", headers=CLIENT
                ) as resp:
                    assert resp.status == 200
                    assert (await resp.json())["data"]["status"] in {"pending", "processing"}
            jobs = await wait_all_terminal(store_url, task_ids, within=30)
            assert all(j.status is JobStatus.SUCCESS for j in jobs)
            assert all(j.watcher_polls >= 1 for j in jobs)  # the watcher used the client's key
            await _until_metric(session, second, WITHOUT_CREDENTIAL, lambda v: v == 0)
            settled = await _metric(
                session,
                second,
                "modellix_proxy_jobs_terminal_total",
                model="minimax/hailuo-02-t2v",
                status="success",
            )
            assert settled == 3
        finally:
            await second.kill()
