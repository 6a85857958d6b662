"""Each Modellix account's requests per minute, held by the admission queue across replicas.

The simulator gives two upstream teams different requests-per-minute limits (counting every
request: submits, polls, the model list) and refuses past them with 429. The proxy (two
replicas on PostgreSQL) knows each account's ``rpm``; a burst larger than each account's
submit allowance (``admission.submit_rpm_share`` of its rpm), split across both replicas,
must turn into waiting: no request refused for rate, every submit a job in the ledger, and
the account's submits at the simulator never more than its allowance within a minute.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.postgres import fresh_postgres
from harness.processes import ProxyProcess, start_proxy
from harness.waits import wait_until
from proxy.accounts import submit_rate
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.stores import open_store
from proxy.stores.base import Store
from proxy.stores.records import JobStatus
from tests.e2e.admission_support import BODY, SUBMIT, virtual_key

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = pytest.mark.postgres
ADMIN = "admin-token-for-rate-tests"
KEYS = {"studio": "sk-account-studio-0101", "agency": "sk-account-agency-0202"}
SIM_TEAMS = {"studio": "mlx-team-studio", "agency": "mlx-team-agency"}
PROXY_TEAM = {"studio": "video", "agency": "ads"}
RPM = {"studio": 30, "agency": 50}  # the accounts' limits, here and at the simulator
SHARE = 0.4
ALLOWANCE = {name: submit_rate(rpm, SHARE) or 0 for name, rpm in RPM.items()}  # 12 and 20
BURST = {name: ALLOWANCE[name] + 8 for name in KEYS}  # past the rpm itself, polls counted


def _env(sim_url: str, store_url: str) -> dict[str, str]:
    accounts = ", ".join(
        f"{name}: {{api_key: {KEYS[name]}, rpm: {RPM[name]}, teams: [{PROXY_TEAM[name]}]}}"
        for name in KEYS
    )
    env = proxy_env(
        sim_url,
        store_url,
        MODELLIX_PROXY_UPSTREAM__ACCOUNTS=f"{{{accounts}}}",
        MODELLIX_PROXY_KEYS__MODE="virtual",
        MODELLIX_PROXY_KEYS__CACHE_SECONDS="0.1",
        MODELLIX_PROXY_ADMIN__TOKEN=ADMIN,
        MODELLIX_PROXY_ADMISSION__ENABLED="true",
        MODELLIX_PROXY_ADMISSION__CONCURRENCY="50",
        MODELLIX_PROXY_ADMISSION__SUBMIT_RPM_SHARE=str(SHARE),
        MODELLIX_PROXY_ADMISSION__TICK_SECONDS="0.2",
        MODELLIX_PROXY_ADMISSION__LEASE_SECONDS="1.5",
    )
    del env["MODELLIX_PROXY_UPSTREAM__API_KEY"]  # two accounts only
    return env


async def _all_jobs(store: Store) -> bool:
    """Every submit of the burst is a finished job (polled through the account's key too);
    nothing queued or being sent."""
    if any(row.state.waiting for row in await store.admission_rows()):
        return False
    if await store.list_intents():
        return False
    jobs = (await store.list_jobs(limit=1000)).jobs
    return len(jobs) == sum(BURST.values()) and all(job.terminal for job in jobs)


async def _burst(procs: tuple[ProxyProcess, ProxyProcess], tokens: dict[str, str]) -> Counter[int]:
    async with aiohttp.ClientSession() as http:

        async def send(i: int, name: str) -> int:
            headers = {"Authorization": f"Bearer {tokens[name]}"}
            body = {**BODY, "prompt": f"{name} shot {i}"}
            async with http.post(f"{procs[i % 2].url}{SUBMIT}", json=body, headers=headers) as r:
                return r.status

        sends = [send(i, name) for name in KEYS for i in range(BURST[name])]
        return Counter(await asyncio.gather(*sends))


async def _accounts_view(proc: ProxyProcess) -> dict[str, dict[str, Any]]:
    url = f"http://127.0.0.1:{proc.admin_port}/admin/accounts"
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as http,
        http.get(url) as resp,
    ):
        assert resp.status == 200
        return {a["name"]: a for a in (await resp.json())["accounts"]}


async def test_a_burst_waits_for_each_accounts_rate_instead_of_meeting_429s(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Bursts beyond two accounts' per-minute allowances through two replicas: all accepted,
    all become jobs, the simulator refuses nothing for rate, and no account's submits exceed
    its allowance within any minute."""
    sim = Simulator(
        SimulatorConfig.fast(
            concurrency_limit=0,
            api_keys={KEYS[n]: SIM_TEAMS[n] for n in KEYS},
            teams={SIM_TEAMS[n]: {"rpm": RPM[n]} for n in KEYS},
        )
    )
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    async with fresh_postgres("test_accounts_rate") as store_url:
        env = _env(sim_url, store_url)
        first = await start_proxy(env, tmp_path / "first.log")
        second: ProxyProcess | None = None
        try:
            second = await start_proxy(env, tmp_path / "second.log")
            store = await open_store(store_url)
            try:
                tokens = {
                    name: (await virtual_key(store, team=team, max_concurrent_jobs=50))[1]
                    for name, team in PROXY_TEAM.items()
                }
                statuses = await _burst((first, second), tokens)
                during = await _accounts_view(second)
                await wait_until(lambda: _all_jobs(store), within=180)
                jobs = (await store.list_jobs(limit=1000)).jobs
            finally:
                await store.close()
        finally:
            for proc in (first, second):
                if proc is not None:
                    await proc.kill()

    assert statuses == {200: sum(BURST.values())}
    assert sim.counters.rate_limit_refusals == 0
    assert sim.counters.submits_received == sum(BURST.values())
    for name in KEYS:  # the view, right after the burst: the allowance used up, no more
        assert during[name]["rpm"] == RPM[name]
        assert during[name]["submits_last_minute"] == ALLOWANCE[name]
        assert "sk-" not in str(during[name])
    assert Counter(j.account for j in jobs) == BURST
    assert all(j.status is JobStatus.SUCCESS for j in jobs)
    for name in KEYS:
        created = sorted(t.created_at for t in sim.tasks.values() if t.team == SIM_TEAMS[name])
        assert len(created) == BURST[name]
        allowance = ALLOWANCE[name]
        gaps = [created[i + allowance] - created[i] for i in range(len(created) - allowance)]
        assert min(gaps) >= 59.0, (name, gaps)  # the minute, less loopback latency
