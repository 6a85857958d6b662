"""Two Modellix accounts behind one proxy of two replicas on PostgreSQL.

The simulator holds two upstream teams (each API key its own balance, concurrency and
bill); the proxy's ``upstream.accounts`` maps a proxy team to each. A batch of submits
through both replicas must keep each account's tasks in flight at the simulator within
that account's concurrency (and never meet the simulator's own refusal); each account's
balance must reconcile to its own share of the ledger (the one task bought directly with
one account's key is that account's unexplained spend, the other's is $0); and the FOCUS
export must split the bill by ``BillingAccountId`` exactly as the simulator billed each key.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
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
from harness.waits import wait_until
from proxy.governance.focus import FOCUS_VERSION, VERSION_HEADER
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.stores import open_store
from proxy.stores.base import Store
from proxy.stores.records import JobStatus
from tests.e2e.admission_support import BODY, SUBMIT, virtual_key

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = pytest.mark.postgres
ADMIN = "admin-token-for-account-tests"
KEYS = {"studio": "sk-account-studio-0001", "agency": "sk-account-agency-0002"}
SIM_TEAMS = {"studio": "mlx-team-studio", "agency": "mlx-team-agency"}
LIMITS = {"studio": 2, "agency": 5}  # the accounts' concurrency, here and at the simulator
BALANCES = {"studio": Decimal(40), "agency": Decimal(300)}
PROXY_TEAM = {"studio": "video", "agency": "ads"}
SUBMITS = 14  # per account


def _env(sim_url: str, store_url: str) -> dict[str, str]:
    accounts = ", ".join(
        f"{name}: {{api_key: {KEYS[name]}, concurrency: {LIMITS[name]}, "
        f"display_name: {name.title()} account, teams: [{PROXY_TEAM[name]}]}}"
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
        MODELLIX_PROXY_ADMISSION__CONCURRENCY="50",  # per team: the accounts' limits bind
        MODELLIX_PROXY_ADMISSION__TICK_SECONDS="0.1",
        MODELLIX_PROXY_ADMISSION__LEASE_SECONDS="1.5",
        MODELLIX_PROXY_ADMISSION__BACKOFF_SECONDS="0.2",
        MODELLIX_PROXY_BALANCE__ENABLED="true",
        MODELLIX_PROXY_BALANCE__INTERVAL_SECONDS="0.3",
        MODELLIX_PROXY_BALANCE__LEASE_SECONDS="2",
    )
    del env["MODELLIX_PROXY_UPSTREAM__API_KEY"]  # no account 'default': two accounts only
    return env


async def _readings_after(store: Store, after: float) -> bool:
    for name in KEYS:
        reading = await store.get_balance_reading(name)
        if reading is None or reading.read_at <= after:
            return False
    return True


async def _quiet(store: Store) -> bool:
    """Nothing queued or being sent; every job terminal."""
    if any(row.state.waiting for row in await store.admission_rows()):
        return False
    if await store.list_intents():
        return False
    jobs = (await store.list_jobs(limit=1000)).jobs
    return len(jobs) == 2 * SUBMITS and all(job.terminal for job in jobs)


async def _buy_directly(sim_url: str, key: str) -> str:
    """One task bought with an account's own key, bypassing the proxy."""
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as raw,
        raw.post(f"{sim_url}{SUBMIT}", json={**BODY, "prompt": "bought directly"}) as resp,
    ):
        assert resp.status == 200
        return str((await resp.json())["data"]["task_id"])


def _billed(sim: Simulator, task_id: str) -> bool:
    return task_id in {r.task_id for r in sim.billing_records()}


async def _submit_all(procs: tuple[ProxyProcess, ProxyProcess], tokens: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:

        async def send(i: int, name: str) -> int:
            proc = procs[i % 2]
            headers = {"Authorization": f"Bearer {tokens[name]}"}
            body = {**BODY, "prompt": f"{name} shot {i}"}
            async with http.post(f"{proc.url}{SUBMIT}", json=body, headers=headers) as r:
                return r.status

        sends = [send(i, name) for i in range(SUBMITS) for name in KEYS]
        statuses = await asyncio.gather(*sends)
    assert Counter(statuses) == {200: 2 * SUBMITS}


async def _focus_csv(proc: ProxyProcess) -> tuple[str, list[dict[str, str]]]:
    url = f"http://127.0.0.1:{proc.admin_port}/admin/export/focus?since=0"
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as http,
        http.get(url) as resp,
    ):
        assert resp.status == 200
        version = resp.headers.get(VERSION_HEADER, "")
        return version, list(csv.DictReader(io.StringIO(await resp.text())))


async def test_two_accounts_hold_their_concurrency_reconcile_and_split_the_bill(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Each account's in-flight tasks stay within its limit at the simulator, each balance
    reconciles to its ledger share, and FOCUS sums per account equal the simulator's bills."""
    sim = Simulator(
        SimulatorConfig(
            pending_seconds=0.2,
            processing_seconds=(0.8, 1.2),  # long enough that each account's slots overlap
            api_keys={KEYS[n]: SIM_TEAMS[n] for n in KEYS},
            teams={
                SIM_TEAMS[n]: {"balance_usd": BALANCES[n], "concurrency": LIMITS[n]} for n in KEYS
            },
        )
    )
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    async with fresh_postgres("test_accounts") as store_url:
        env = _env(sim_url, store_url)
        first = await start_proxy(env, tmp_path / "first.log")
        second: ProxyProcess | None = None
        try:
            second = await start_proxy(env, tmp_path / "second.log")
            store = await open_store(store_url)
            try:
                await wait_until(lambda: _readings_after(store, 0), within=30)
                direct = await _buy_directly(sim_url, KEYS["studio"])
                async with asyncio.timeout(30):  # billed before the batch takes its slots
                    await sim.wait_until(
                        lambda: direct in {r.task_id for r in sim.billing_records()}
                    )
                tokens = {
                    name: (await virtual_key(store, team=team, max_concurrent_jobs=50))[1]
                    for name, team in PROXY_TEAM.items()
                }
                await _submit_all((first, second), tokens)
                await wait_until(lambda: _quiet(store), within=120)
                finished = time.time()
                await wait_until(lambda: _readings_after(store, finished), within=30)
                readings = {name: await store.get_balance_reading(name) for name in KEYS}
                jobs = (await store.list_jobs(limit=1000)).jobs
            finally:
                await store.close()
            version, rows = await _focus_csv(second)
        finally:
            for proc in (first, second):
                if proc is not None:
                    await proc.kill()

    snapshot = sim.snapshot()
    billed = {name: sim.billed_total_micros(SIM_TEAMS[name]) for name in KEYS}
    direct_micros = next(r.amount_micros for r in sim.billing_records() if r.task_id == direct)
    # Concurrency, measured at the simulator: each account up to its own limit, never past
    # it, and the proxy never sent a task the simulator had to refuse for concurrency.
    for name in KEYS:
        assert snapshot["max_active"][SIM_TEAMS[name]] == LIMITS[name], (name, snapshot)
    assert snapshot["counters"]["concurrency_refusals"] == 0
    # Every job billed to the account of its team.
    assert Counter((j.team, j.account) for j in jobs) == {(PROXY_TEAM[n], n): SUBMITS for n in KEYS}
    assert all(j.status is JobStatus.SUCCESS for j in jobs)
    # Balances: each reconciles to its own ledger share.
    studio, agency = readings["studio"], readings["agency"]
    assert studio is not None
    assert agency is not None
    assert studio.unexplained_micros == direct_micros > 0
    assert agency.unexplained_micros == 0
    assert (studio.topup_micros, agency.topup_micros) == (0, 0)
    for name in KEYS:
        assert sim.balance_micros(SIM_TEAMS[name]) == int(BALANCES[name] * 1_000_000) - billed[name]
    # FOCUS: the bill split by account, to the micro-dollar.
    assert version == FOCUS_VERSION == "1.1"
    by_account: dict[str, Decimal] = {}
    for row in rows:
        account = row["BillingAccountId"]
        by_account[account] = by_account.get(account, Decimal(0)) + Decimal(row["BilledCost"])
        assert row["BillingAccountName"] == f"{account.title()} account"
        assert row["SubAccountId"] == row["SubAccountName"] == PROXY_TEAM[account]
    assert {a: int(usd * 1_000_000) for a, usd in by_account.items()} == {
        "studio": billed["studio"] - direct_micros,
        "agency": billed["agency"],
    }
    print(
        f"\naccounts: max in flight {[snapshot['max_active'][SIM_TEAMS[n]] for n in KEYS]}"
        f" (limits {list(LIMITS.values())}), billed {billed},"
        f" unexplained studio {studio.unexplained_micros} agency {agency.unexplained_micros},"
        f" FOCUS {by_account}"
    )
