"""Governance in one process: budgets reserve and refuse, virtual keys identify and isolate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from proxy.governance.keys import new_key
from proxy.simulator import SimulatorConfig
from proxy.stores.records import Budget, BudgetScopeKind
from tests.e2e.conftest import Stack
from tests.e2e.test_client_flow import HAILUO, wait_terminal
from tests.support import SIMULATOR_HAILUO_PRICES

UPSTREAM_KEY = "sk-real-upstream-key-0001"
SUBMIT = "/api/v1/minimax/hailuo-02-t2v"  # $0.324 at 6 s 768P


@pytest.fixture
async def stack(make_stack: Callable[..., Awaitable[Stack]]) -> Stack:
    """These tests reserve exact Hailuo estimates: an operator table at the simulator's prices."""
    return await make_stack(pricing=SIMULATOR_HAILUO_PRICES)


async def put_budget(
    stack: Stack,
    name: str,
    scope: BudgetScopeKind,
    subject: str | None,
    limit: str,
    *,
    hard: bool = True,
    window: str = "day",
) -> None:
    store = stack.runtime.store
    assert store is not None
    now = time.time()
    micros = int(Decimal(limit) * 1_000_000)
    await store.put_budget(
        Budget(
            name=name,
            scope=scope,
            subject=subject,
            window=window,  # type: ignore[arg-type]
            limit_micros=micros,
            hard=hard,
            created_at=now,
            updated_at=now,
        )
    )
    assert stack.runtime.budgets is not None
    stack.runtime.budgets.invalidate()


async def test_team_budget_refuses_with_details_and_never_overshoots(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Under a $1 team budget three $0.324 jobs fit; the rest get 402 with the budget's numbers."""
    await put_budget(stack, "studio-a-day", "team", "studio-a", "1.00")
    headers = {"X-Modellix-Team": "studio-a"}

    async def submit(i: int) -> tuple[int, dict[str, Any], dict[str, str]]:
        body = {**HAILUO, "prompt": f"budget {i}"}
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body, headers=headers) as resp:
            return resp.status, await resp.json(), dict(resp.headers)

    results = await asyncio.gather(*(submit(i) for i in range(10)))
    statuses = [status for status, _, _ in results]
    assert statuses.count(200) == 3
    assert statuses.count(402) == 7
    refused = next(doc for status, doc, _ in results if status == 402)
    assert refused["message"].startswith("Budget exceeded: day budget 'studio-a-day'")
    budget = refused["budget"]
    assert budget["limit_usd"] == 1.0
    assert budget["spent_usd"] + budget["reserved_usd"] <= 1.0
    assert budget["requested_usd"] == 0.324
    assert budget["resets_at"].endswith("T00:00:00Z")
    accepted = next(h for status, _, h in results if status == 200)
    assert "X-Modellix-Proxy-Budget-Remaining-USD" in accepted
    assert stack.sim.counters.tasks_created == 3
    other = {"X-Modellix-Team": "studio-b"}  # another team is not under this budget
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=HAILUO, headers=other) as resp:
        assert resp.status == 200


async def test_reservation_becomes_spend_at_terminal(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A finished job turns its reservation into spend; the window shows it."""
    await put_budget(stack, "all", "global", None, "10.00", window="month")
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=HAILUO) as resp:
        task_id = (await resp.json())["data"]["task_id"]
    assert stack.runtime.budgets is not None
    standing = await stack.runtime.budgets.standing(time.time())
    assert standing[0][1] is not None
    assert standing[0][1].reserved_micros == 324_000
    await wait_terminal(http, stack.proxy_url, task_id)
    standing = await stack.runtime.budgets.standing(time.time())
    window = standing[0][1]
    assert window is not None
    assert (window.spent_micros, window.reserved_micros) == (324_000, 0)


async def test_upstream_refusal_releases_the_reservation(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A submit the upstream refuses gives its reservation back."""
    await put_budget(stack, "all", "global", None, "10.00", window="month")
    stack.sim.inject("content_policy_submit", count=1, route="submit")
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=HAILUO) as resp:
        assert resp.status == 400
    assert stack.runtime.budgets is not None
    window = (await stack.runtime.budgets.standing(time.time()))[0][1]
    assert window is None or (window.spent_micros, window.reserved_micros) == (0, 0)


async def test_unpriced_model_fails_closed_only_under_a_budget(
    make_stack: Callable[..., Awaitable[Stack]], http: aiohttp.ClientSession
) -> None:
    """An unpriced model is served without budgets and refused 402 where a hard budget applies.

    Unpriced: no operator entry, and the upstream's list (which would price it) turned off.
    """
    stack = await make_stack(models={"upstream_list": {"enabled": False}})
    body = {"prompt": "a kite over the sea"}
    async with http.post(f"{stack.proxy_url}/api/v1/kling/kling-v3-t2v", json=body) as resp:
        assert resp.status == 200
    await put_budget(stack, "all", "global", None, "10.00")
    async with http.post(f"{stack.proxy_url}/api/v1/kling/kling-v3-t2v", json=body) as resp:
        assert resp.status == 402
        doc = await resp.json()
    assert doc["error_type"] == "unpriced_under_budget"


async def test_soft_budget_only_signals(stack: Stack, http: aiohttp.ClientSession) -> None:
    """A soft budget never refuses, but tracks what is spent past it."""
    await put_budget(stack, "soft", "global", None, "0.10", hard=False)
    for i in range(2):
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json={**HAILUO, "prompt": f"s{i}"}) as r:
            assert r.status == 200
    assert stack.runtime.budgets is not None
    window = (await stack.runtime.budgets.standing(time.time()))[0][1]
    assert window is not None
    assert window.reserved_micros == 648_000


async def _virtual_stack(make_stack: Any, **keys: Any) -> Stack:
    config = SimulatorConfig.fast(concurrency_limit=0, api_keys={UPSTREAM_KEY: "default"})
    stack: Stack = await make_stack(
        config,
        keys={"mode": "virtual", "cache_seconds": 0.1},
        upstream={"api_key": UPSTREAM_KEY},
        **keys,
    )
    return stack


async def _key(stack: Stack, **fields: Any) -> tuple[str, str]:
    store = stack.runtime.store
    assert store is not None
    record, token = new_key(time.time(), **fields)
    await store.create_virtual_key(record)
    return record.key_id, token


async def test_virtual_key_injects_the_upstream_key(make_stack: Any) -> None:
    """A proxy key is swapped for the real upstream key; the caller is the key, its team applies."""
    stack = await _virtual_stack(make_stack)
    key_id, token = await _key(stack, team="studio-a")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json=HAILUO) as resp:
            assert resp.status == 200
            task_id = (await resp.json())["data"]["task_id"]
        await wait_terminal(http, stack.proxy_url, task_id)
        async with http.get(f"{stack.proxy_url}/api/v1/team/balance") as resp:
            assert resp.status == 200
    # The simulator accepts only the upstream key: the 200s prove it was swapped in.
    store = stack.runtime.store
    assert store is not None
    job = await store.get_job(task_id)
    assert job is not None
    assert (job.caller, job.team) == (f"vk:{key_id}", "studio-a")


async def test_virtual_mode_refuses_raw_and_revoked_keys(make_stack: Any) -> None:
    """Without a proxy key, or with a revoked one, the answer is 401 and nothing goes upstream."""
    stack = await _virtual_stack(make_stack)
    key_id, token = await _key(stack)
    async with aiohttp.ClientSession() as http:
        raw = {"Authorization": f"Bearer {UPSTREAM_KEY}"}
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json=HAILUO, headers=raw) as resp:
            assert resp.status == 401
            assert (await resp.json())["error_type"] == "virtual_key_required"
        store = stack.runtime.store
        assert store is not None
        await store.revoke_virtual_key(key_id, time.time())
        vk = {"Authorization": f"Bearer {token}"}
        async with asyncio.timeout(1.0):  # revocation reaches every replica within a second
            while True:
                async with http.post(f"{stack.proxy_url}{SUBMIT}", json=HAILUO, headers=vk) as r:
                    if r.status == 401:
                        assert (await r.json())["error_type"] == "revoked_key"
                        break
    assert stack.sim.counters.tasks_created == 0


async def test_key_allow_list_and_task_privacy(make_stack: Any) -> None:
    """A key may use only its models, and sees only its own tasks."""
    stack = await _virtual_stack(make_stack)
    _, first = await _key(stack, allowed_models=("minimax/hailuo-02-t2v",))
    _, second = await _key(stack)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {first}"}) as http:
        async with http.post(f"{stack.proxy_url}/api/v1/minimax/hailuo-2.3-t2v", json=HAILUO) as r:
            assert r.status == 404
            assert (await r.json())["error_type"] == "model_not_allowed"
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json=HAILUO) as resp:
            task_id = (await resp.json())["data"]["task_id"]
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {second}"}) as other,
        other.get(f"{stack.proxy_url}/api/v1/tasks/{task_id}") as resp,
    ):
        assert resp.status == 404
        assert (await resp.json())["error_type"] == "task_not_owned"


async def test_per_key_concurrency_cap(make_stack: Any) -> None:
    """A key capped at two jobs in flight gets 429 for the third until one finishes."""
    stack = await _virtual_stack(make_stack)
    _, token = await _key(stack, max_concurrent_jobs=2)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        ids = []
        for i in range(2):
            async with http.post(
                f"{stack.proxy_url}{SUBMIT}", json={**HAILUO, "prompt": f"c{i}"}
            ) as r:
                assert r.status == 200
                ids.append((await r.json())["data"]["task_id"])
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json={**HAILUO, "prompt": "c3"}) as r:
            assert r.status == 429
            assert (await r.json())["error_type"] == "key_concurrency"
        await wait_terminal(http, stack.proxy_url, ids[0])
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json={**HAILUO, "prompt": "c4"}) as r:
            assert r.status == 200


async def test_unknown_outcome_keeps_its_reservation_until_reconciled(
    stack: Stack, http: aiohttp.ClientSession, aiohttp_server: Any
) -> None:
    """A lost submit keeps its money reserved; an operator's reconcile releases it, once."""
    from harness.config import settings_for
    from proxy.admin import create_admin_app
    from proxy.telemetry.metrics import Metrics

    await put_budget(stack, "all", "global", None, "10.00", window="month")
    body = {**HAILUO, "prompt": "lost [sim:reset_before_create]"}
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body) as resp:
        assert resp.status == 504
    assert stack.runtime.budgets is not None
    window = (await stack.runtime.budgets.standing(time.time()))[0][1]
    assert window is not None
    assert window.reserved_micros == 324_000
    store = stack.runtime.store
    assert store is not None
    unknown = (await store.list_jobs()).jobs[0]
    assert unknown.status.value == "unknown"
    settings = settings_for(stack.sim_url, admin={"enabled": True, "token": "t"})
    admin = await aiohttp_server(create_admin_app(settings, Metrics(), stack.runtime))
    url = str(admin.make_url(f"/admin/jobs/{unknown.task_id}/reconcile"))
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as ops:
        async with ops.post(url) as resp:
            assert resp.status == 200
            assert (await resp.json())["status"] == "failed"
        async with ops.post(url) as resp:
            assert resp.status == 409
    window = (await stack.runtime.budgets.standing(time.time()))[0][1]
    assert window is not None
    assert (window.spent_micros, window.reserved_micros) == (0, 0)
