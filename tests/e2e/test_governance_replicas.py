"""Governance across three proxy processes on one PostgreSQL.

Budgets are never overshot by racing replicas, a revoked key is refused
everywhere within a second, and the spend report adds up to the ledger and to
what the (simulated) upstream billed.

Waiting for jobs to settle polls the store for a condition, bounded by a
timeout (the ledger has no change feed); the only fixed-interval retry loop is
the revocation test's, whose property is itself about time.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import clean_environ, proxy_env
from harness.postgres import fresh_postgres
from harness.processes import ProxyProcess, run_proxy, start_proxy
from proxy.governance.windows import window_bounds
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.stores import Store, open_store
from tests.e2e.test_client_flow import HAILUO
from tests.support import SIMULATOR_HAILUO_PRICES

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ADMIN_TOKEN = "replica-admin-token"
UPSTREAM_KEY = "sk-real-upstream-key-0001"
SUBMIT = "/api/v1/minimax/hailuo-02-t2v"
SLUG = "minimax/hailuo-02-t2v"
JOB = 324_000  # micro-dollars: Hailuo 02, 6 s at 768P
REPLICAS = 3
BURST = 300
DETAIL_FIELDS = {"name", "limit_usd", "spent_usd", "reserved_usd", "requested_usd", "resets_at"}

Result = tuple[int, dict[str, Any], dict[str, str]]


@dataclass
class Cluster:
    sim: Simulator
    procs: list[ProxyProcess]
    store: Store
    store_url: str


@asynccontextmanager
async def cluster(
    aiohttp_server: ServerFactory, tmp_path: Path, *, virtual: bool, operator_prices: bool = True
) -> AsyncIterator[Cluster]:
    """A simulator whose jobs run 4-5 s, and three replicas on one fresh PostgreSQL database.

    ``operator_prices``: an operator table at the simulator's Hailuo prices (exact estimates
    the tests below count in); without it every model is priced from the upstream's list."""
    async with fresh_postgres() as store_url:
        sim = Simulator(
            SimulatorConfig(
                pending_seconds=2.0,
                processing_seconds=(2.0, 3.0),
                concurrency_limit=0,
                initial_balance_usd=Decimal(100_000),
                api_keys={UPSTREAM_KEY: "default"} if virtual else None,
            )
        )
        sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
        extra = {"MODELLIX_PROXY_ADMIN__TOKEN": ADMIN_TOKEN}
        if operator_prices:
            extra["MODELLIX_PROXY_PRICING__MODELS"] = json.dumps(SIMULATOR_HAILUO_PRICES["models"])
        if virtual:
            extra["MODELLIX_PROXY_KEYS__MODE"] = "virtual"
            extra["MODELLIX_PROXY_UPSTREAM__API_KEY"] = UPSTREAM_KEY
        env = proxy_env(sim_url, store_url, **extra)
        procs: list[ProxyProcess] = []
        store = await open_store(store_url)
        try:
            started = await asyncio.gather(
                *(start_proxy(env, tmp_path / f"replica-{i}.log") for i in range(REPLICAS)),
                return_exceptions=True,  # let every start finish, so each started one is stopped
            )
            procs.extend(p for p in started if isinstance(p, ProxyProcess))
            for failure in started:
                if isinstance(failure, BaseException):
                    raise failure
            yield Cluster(sim, procs, store, store_url)
        finally:
            for proc in procs:
                with contextlib.suppress(Exception):
                    await proc.kill()
            await store.close()


def admin_url(proc: ProxyProcess) -> str:
    return f"http://127.0.0.1:{proc.admin_port}"


def admin_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=aiohttp.ClientTimeout(total=15),
    )


def burst_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=BURST + 20),
        timeout=aiohttp.ClientTimeout(total=30),
    )


def micros(value: float | str) -> int:
    return int((Decimal(str(value)) * 1_000_000).to_integral_value())


async def put_budget(cl: Cluster, name: str, body: dict[str, Any]) -> None:
    """Define a budget through one replica, then make every replica re-read its budgets."""
    async with admin_session() as admin:
        async with admin.put(f"{admin_url(cl.procs[0])}/admin/budgets/{name}", json=body) as r:
            assert r.status == 200, await r.text()
        for proc in cl.procs:  # GET /admin/budgets drops that replica's cached definitions
            async with admin.get(f"{admin_url(proc)}/admin/budgets") as r:
                assert r.status == 200
                assert name in {b["name"] for b in (await r.json())["budgets"]}


async def create_key(cl: Cluster, **fields: Any) -> tuple[str, str]:
    async with (
        admin_session() as admin,
        admin.post(f"{admin_url(cl.procs[0])}/admin/keys", json=fields) as r,
    ):
        assert r.status == 201, await r.text()
        doc = await r.json()
    return doc["key_id"], doc["key"]


async def submit(
    session: aiohttp.ClientSession, proc: ProxyProcess, headers: dict[str, str], prompt: str
) -> Result:
    body = {**HAILUO, "prompt": prompt}
    async with session.post(f"{proc.url}{SUBMIT}", json=body, headers=headers) as resp:
        doc = await resp.json(content_type=None)
        return resp.status, doc, dict(resp.headers)


def window_keys(names: Sequence[str]) -> list[tuple[str, float]]:
    start, _ = window_bounds("month", time.time())
    return [(f"budget:{name}", start) for name in names]


async def watch_windows(
    store: Store, keys: list[tuple[str, float]], stop: asyncio.Event
) -> dict[str, int]:
    """Read the windows back to back until ``stop``; the most each ever held (spent + reserved)."""
    most: dict[str, int] = {}
    while not stop.is_set():
        for window in (await store.budget_windows(keys)).values():
            held = window.spent_micros + window.reserved_micros
            most[window.scope_key] = max(most.get(window.scope_key, 0), held)
    return most


async def racing(
    store: Store, keys: list[tuple[str, float]], shots: Sequence[Awaitable[Result]]
) -> tuple[list[Result], dict[str, int]]:
    """Fire every submit at once while sampling the budget windows."""
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        sampler = tg.create_task(watch_windows(store, keys, stop))
        try:
            results = await asyncio.gather(*shots)
        finally:
            stop.set()
    return results, sampler.result()


async def settled(store: Store, task_ids: Sequence[str], keys: list[tuple[str, float]]) -> None:
    """Wait (bounded) until every job is terminal in the ledger and no money is still reserved."""
    async with asyncio.timeout(30):
        while True:
            jobs = [await store.get_job(t) for t in task_ids]
            windows = await store.budget_windows(keys)
            if all(j is not None and j.terminal for j in jobs) and all(
                w.reserved_micros == 0 for w in windows.values()
            ):
                return
            await asyncio.sleep(0.1)


def check_refusal(status: int, doc: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """A budget 402 with every detail, showing that the named budget really had no room."""
    assert status == 402, (status, doc)
    assert doc["error_type"] == "budget_exceeded"
    budget: dict[str, Any] = doc["budget"]
    assert set(budget) >= DETAIL_FIELDS
    assert headers["X-Modellix-Proxy-Budget"] == budget["name"]
    limit, spent, held = (micros(budget[k]) for k in ("limit_usd", "spent_usd", "reserved_usd"))
    assert micros(budget["requested_usd"]) == JOB
    assert spent + held <= limit
    assert spent + held + JOB > limit
    _, resets = window_bounds("month", time.time())
    assert resets is not None
    assert budget["resets_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(resets))
    return budget


async def check_report(cl: Cluster, refused: int) -> None:
    """The admin report and the CLI report total exactly the ledger and the upstream's bill."""
    until = time.time() + 60
    ledger = sum(row.final_cost_micros for row in await cl.store.spend_summary(0, until))
    cl.sim.settle()
    billed = cl.sim.billed_total_micros()
    assert ledger == billed
    async with (
        admin_session() as admin,
        admin.get(
            f"{admin_url(cl.procs[-1])}/admin/report",
            params={"format": "json", "group_by": "team,model"},
        ) as r,
    ):
        assert r.status == 200
        doc = await r.json()
    assert micros(doc["total_spend_usd"]) == ledger
    assert sum(micros(row["spend_usd"]) for row in doc["rows"]) == ledger
    assert sum(row["refused"] for row in doc["rows"]) == refused
    assert sum(micros(row["refused_savings_usd"]) for row in doc["rows"]) == refused * JOB
    env = clean_environ() | {"MODELLIX_PROXY_STORE__URL": cl.store_url}
    cli = await run_proxy("report", "--format", "csv", "--group-by", "team,model", env=env)
    assert cli.code == 0, cli.err
    rows = list(csv.DictReader(io.StringIO(cli.out)))
    assert rows
    assert sum(micros(row["spend_usd"]) for row in rows) == ledger
    assert sum(int(row["refused"]) for row in rows) == refused
    assert {(row["team"], row["model"]) for row in rows} == {
        (row["team"] or "", row["model"]) for row in doc["rows"]
    }


async def test_hard_budget_holds_under_a_burst_on_three_replicas(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """300 racing submits on three replicas under $3: 9 jobs, 291 detailed 402s, no overshoot."""
    async with cluster(aiohttp_server, tmp_path, virtual=False) as cl:
        await put_budget(cl, "burst", {"scope": "global", "window": "month", "limit_usd": "3.00"})
        keys = window_keys(["burst"])
        fits = 3_000_000 // JOB
        async with burst_session() as session:
            shots = [
                submit(
                    session,
                    cl.procs[i % REPLICAS],
                    {
                        "Authorization": f"Bearer sk-client-{i % 7}",
                        "X-Modellix-Team": ("studio-a", "studio-b")[i % 2],
                    },
                    f"burst {i}",
                )
                for i in range(BURST)
            ]
            results, most = await racing(cl.store, keys, shots)
        after_burst = (await cl.store.budget_windows(keys))[keys[0]]
        statuses = Counter(status for status, _, _ in results)
        assert statuses == {200: fits, 402: BURST - fits}
        assert most["budget:burst"] <= 3_000_000
        for status, doc, headers in results:
            if status != 200:
                budget = check_refusal(status, doc, headers)
                assert budget["name"] == "burst"
                assert micros(budget["limit_usd"]) == 3_000_000
        assert cl.sim.counters.tasks_created == fits
        # Jobs were still running while the submits raced: their money was reserved, not spent.
        assert after_burst.reserved_micros > 0
        assert after_burst.spent_micros + after_burst.reserved_micros == fits * JOB
        task_ids = [doc["data"]["task_id"] for status, doc, _ in results if status == 200]
        await settled(cl.store, task_ids, keys)
        final = (await cl.store.budget_windows(keys))[keys[0]]
        assert (final.spent_micros, final.reserved_micros) == (fits * JOB, 0)
        ledger = await cl.store.spend_summary(0, time.time() + 60)
        assert sum(row.final_cost_micros for row in ledger) == final.spent_micros
        await check_report(cl, refused=BURST - fits)


LISTED = (  # (slug, body): list-priced, fixed and min/max, video and image
    ("kling/kling-v3-t2v", {"prompt": "p", "duration": 5}),
    ("minimax/hailuo-02-t2v", HAILUO),
    ("google/nano-banana-2-lite", {"prompt": "p"}),
)


async def test_list_priced_models_hold_a_hard_budget_on_three_replicas(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """No price table: 90 racing submits of list-priced models on three replicas under a hard
    $3 team budget. None is refused as unpriced, the budget never holds more than $3, and what
    settles is what the upstream billed."""
    async with cluster(aiohttp_server, tmp_path, virtual=False, operator_prices=False) as cl:
        body = {"scope": "team", "subject": "studio", "window": "month", "limit_usd": "3.00"}
        await put_budget(cl, "studio-cap", body)
        keys = window_keys(["studio-cap"])

        async def shot(session: aiohttp.ClientSession, i: int) -> Result:
            slug, payload = LISTED[i % len(LISTED)]
            headers = {"Authorization": f"Bearer sk-client-{i % 5}", "X-Modellix-Team": "studio"}
            proc = cl.procs[i % REPLICAS]
            json_body = {**payload, "prompt": f"list {i}"}
            async with session.post(
                f"{proc.url}/api/v1/{slug}", json=json_body, headers=headers
            ) as r:
                return r.status, await r.json(content_type=None), dict(r.headers)

        async with burst_session() as session:
            results, most = await racing(cl.store, keys, [shot(session, i) for i in range(90)])
        statuses = Counter(status for status, _, _ in results)
        assert set(statuses) <= {200, 402}, statuses
        assert statuses[200] > 0
        for status, doc, headers in results:
            if status == 402:
                assert doc["error_type"] == "budget_exceeded", doc
            else:
                assert headers["X-Modellix-Proxy-Price-Source"] == "upstream_list"
        assert most["budget:studio-cap"] <= 3_000_000
        task_ids = [doc["data"]["task_id"] for status, doc, _ in results if status == 200]
        await settled(cl.store, task_ids, keys)
        final = (await cl.store.budget_windows(keys))[keys[0]]
        cl.sim.settle()
        assert final.spent_micros == cl.sim.billed_total_micros() <= 3_000_000
        assert final.reserved_micros == 0


async def test_key_and_team_budgets_hold_together_on_three_replicas(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Two keys of one team race on three replicas; neither key nor team budget is exceeded."""
    async with cluster(aiohttp_server, tmp_path, virtual=True) as cl:
        first_id, first = await create_key(cl, name="first", team="studio")
        second_id, second = await create_key(cl, name="second", team="studio")
        await put_budget(
            cl, "key-first", {"scope": "key", "subject": first_id, "limit_usd": "0.70"}
        )
        await put_budget(cl, "key-second", {"scope": "key", "subject": second_id, "limit_usd": 0.7})
        await put_budget(cl, "team-studio", {"scope": "team", "subject": "studio", "limit_usd": 1})
        limits = {"key-first": 700_000, "key-second": 700_000, "team-studio": 1_000_000}
        keys = window_keys(list(limits))
        tokens = {first_id: first, second_id: second}
        own = {first_id: "key-first", second_id: "key-second"}
        order = [first_id, second_id]
        async with burst_session() as session:
            shots = [
                submit(
                    session,
                    cl.procs[i % REPLICAS],
                    {"Authorization": f"Bearer {tokens[order[i % 2]]}"},
                    f"team burst {i}",
                )
                for i in range(BURST)
            ]
            results, most = await racing(cl.store, keys, shots)
            accepted: Counter[str] = Counter()
            for i, (status, doc, headers) in enumerate(results):
                key_id = order[i % 2]
                if status == 200:
                    accepted[key_id] += 1
                    continue
                budget = check_refusal(status, doc, headers)
                # Only a budget that applies to this key refuses it, and with its own limit.
                assert budget["name"] in {own[key_id], "team-studio"}
                assert micros(budget["limit_usd"]) == limits[budget["name"]]
            # The team's $1.00 holds three jobs; each key's $0.70 holds two.
            assert sum(accepted.values()) == 3
            assert max(accepted.values()) == 2
            assert cl.sim.counters.tasks_created == 3
            for name, held in most.items():
                assert held <= limits[name.removeprefix("budget:")], name
            # Afterwards the key that got two is refused by its own budget, the other by the team's.
            full = max(accepted, key=lambda k: accepted[k])
            other = first_id if full == second_id else second_id
            for key_id, refuser in ((full, own[full]), (other, "team-studio")):
                headers = {"Authorization": f"Bearer {tokens[key_id]}"}
                status, doc, answer = await submit(session, cl.procs[1], headers, "one more")
                assert check_refusal(status, doc, answer)["name"] == refuser
        assert cl.sim.counters.tasks_created == 3
        task_ids = [doc["data"]["task_id"] for status, doc, _ in results if status == 200]
        await settled(cl.store, task_ids, keys)
        windows = await cl.store.budget_windows(keys)
        spent = {k.removeprefix("budget:"): w.spent_micros for (k, _), w in windows.items()}
        assert spent == {
            "key-first": accepted[first_id] * JOB,
            "key-second": accepted[second_id] * JOB,
            "team-studio": 3 * JOB,
        }
        await check_report(cl, refused=BURST - 3 + 2)


async def test_revoked_key_is_refused_by_every_replica_within_a_second(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """After a revoke on one replica all three answer 401 revoked_key within 1 s, buying nothing."""
    async with cluster(aiohttp_server, tmp_path, virtual=True) as cl:
        key_id, token = await create_key(cl, name="leaving", team="studio")
        headers = {"Authorization": f"Bearer {token}"}
        accepted = 0
        async with burst_session() as session:
            for i, proc in enumerate(cl.procs):  # every replica has the key cached
                status, _, _ = await submit(session, proc, headers, f"warm {i}")
                assert status == 200
                accepted += 1

            async def until_refused(proc: ProxyProcess, started: float) -> tuple[float, int]:
                """Submit every 20 ms until refused; the seconds since the revoke, and the 200s."""
                ok = 0
                while True:
                    status, doc, _ = await submit(session, proc, headers, "after revoke")
                    if status == 401:
                        assert doc["error_type"] == "revoked_key"
                        return time.monotonic() - started, ok
                    assert status == 200, (status, doc)
                    ok += 1
                    await asyncio.sleep(0.02)

            async with admin_session() as admin:
                started = time.monotonic()
                async with admin.delete(f"{admin_url(cl.procs[1])}/admin/keys/{key_id}") as r:
                    assert r.status == 200
                async with asyncio.timeout(5):
                    turned = await asyncio.gather(*(until_refused(p, started) for p in cl.procs))
            for elapsed, ok in turned:
                assert elapsed < 1.0, turned
                accepted += ok
            created = cl.sim.counters.tasks_created
            assert created == accepted
            # Once refused, always refused: nothing more reaches the upstream from any replica.
            for proc in cl.procs:
                for i in range(3):
                    status, doc, _ = await submit(session, proc, headers, f"still revoked {i}")
                    assert (status, doc["error_type"]) == (401, "revoked_key")
        assert cl.sim.counters.tasks_created == created
        submits = cl.sim.requests(route="submit")
        assert len(submits) == created


async def test_key_concurrency_cap_holds_across_replicas(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """A key capped at two jobs in flight gets two 200s and 429s from a burst on three replicas."""
    async with cluster(aiohttp_server, tmp_path, virtual=True) as cl:
        key_id, token = await create_key(cl, name="capped", max_concurrent_jobs=2)
        headers = {"Authorization": f"Bearer {token}"}
        slots = [(f"jobs:{key_id}", 0.0)]
        async with burst_session() as session:
            shots = [
                submit(session, cl.procs[i % REPLICAS], headers, f"cap {i}") for i in range(60)
            ]
            results, most = await racing(cl.store, slots, shots)
            assert Counter(status for status, _, _ in results) == {200: 2, 429: 58}
            assert {doc["error_type"] for status, doc, _ in results if status == 429} == {
                "key_concurrency"
            }
            assert most == {f"jobs:{key_id}": 2}
            assert cl.sim.counters.tasks_created == 2
            task_ids = [doc["data"]["task_id"] for status, doc, _ in results if status == 200]
            await settled(cl.store, task_ids, slots)  # both finished: their slots are free again
            status, _, _ = await submit(session, cl.procs[2], headers, "after the cap")
            assert status == 200
        assert cl.sim.counters.tasks_created == 3
