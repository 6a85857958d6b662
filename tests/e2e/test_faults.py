"""Fault runs: whatever the upstream does, no video is bought twice and the money adds up."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from harness.waits import bound_for
from proxy.simulator import SimulatorConfig
from proxy.stores.records import JobStatus
from tests.e2e.conftest import Stack
from tests.e2e.test_client_flow import HAILUO, wait_terminal

SUBMIT = "/api/v1/minimax/hailuo-02-t2v"


def body(tag: str, fault: str | None = None) -> dict[str, Any]:
    prompt = f"scene {tag}" + (f" [sim:{fault}]" if fault else "")
    return {**HAILUO, "prompt": prompt}


async def ledger_total(stack: Stack) -> int:
    store = stack.runtime.store
    assert store is not None
    rows = await store.spend_summary(0, 1e12)
    return sum(row.final_cost_micros for row in rows)


async def test_transient_5xx_burst_is_retried_and_bought_once(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A 503 burst on submit is retried; one task is created and billed once."""
    stack.sim.inject("503", count=2, route="submit")
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body("a")) as resp:
        assert resp.status == 200
        task_id = (await resp.json())["data"]["task_id"]
    assert stack.sim.counters.tasks_created == 1
    await wait_terminal(http, stack.proxy_url, task_id)
    store = stack.runtime.store
    assert store is not None
    job = await store.get_job(task_id)
    assert job is not None
    assert job.upstream_attempts == 3


async def test_reset_before_create_is_unknown_and_not_resent(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A connection reset after the submit was sent is an unknown outcome: 504, never resent."""
    async with http.post(
        f"{stack.proxy_url}{SUBMIT}", json=body("c", "reset_before_create")
    ) as resp:
        assert resp.status == 504
        doc = await resp.json()
    assert "outcome is unknown" in doc["message"]
    assert len(stack.sim.requests(method="POST")) == 1
    store = stack.runtime.store
    assert store is not None
    page = await store.list_jobs(status=JobStatus.UNKNOWN)
    assert len(page.jobs) == 1


async def test_reset_after_create_with_key_retry_never_buys_twice(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """The classic lost answer: the task exists, the client retries with its key, no second task."""
    headers = {"Idempotency-Key": "order-42"}
    async with http.post(
        f"{stack.proxy_url}{SUBMIT}", json=body("d", "reset_after_create"), headers=headers
    ) as resp:
        assert resp.status == 504
    async with http.post(
        f"{stack.proxy_url}{SUBMIT}", json=body("d", "reset_after_create"), headers=headers
    ) as resp:
        assert resp.status == 409
        assert "outcome is unknown" in (await resp.json())["message"]
    assert stack.sim.counters.tasks_created == 1
    assert len(stack.sim.requests(method="POST")) == 1


async def test_client_retries_with_same_key_replay(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A retried submit with the same key and body is replayed without an upstream call."""
    headers = {"Idempotency-Key": "k-1"}
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body("e"), headers=headers) as first:
        first_doc = await first.json()
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body("e"), headers=headers) as again:
        assert again.status == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await again.json() == first_doc
    async with http.post(
        f"{stack.proxy_url}{SUBMIT}", json=body("other"), headers=headers
    ) as other:
        assert other.status == 422
    assert len(stack.sim.requests(method="POST")) == 1


async def test_concurrent_duplicates_create_one_task(
    make_stack: Any, http: aiohttp.ClientSession
) -> None:
    """Twenty concurrent submits with one key create one task; the rest replay or get 409."""
    stack = await make_stack(SimulatorConfig.fast(concurrency_limit=0))
    headers = {"Idempotency-Key": "dup-1"}

    async def one() -> int:
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body("f"), headers=headers) as resp:
            await resp.read()
            return resp.status

    statuses = await asyncio.gather(*(one() for _ in range(20)))
    assert stack.sim.counters.tasks_created == 1
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 409}


async def test_fault_run_billing_equals_ledger(
    make_stack: Any, http: aiohttp.ClientSession
) -> None:
    """Under 5xx, 429 and reset rates, billed tasks equal accepted submits and money matches."""
    config = SimulatorConfig.fast(
        concurrency_limit=0,
        seed=11,
        rate_503=0.15,
        rate_429=0.1,
        rate_500=0.05,
        rate_task_failed=0.1,
    )
    stack = await make_stack(config)
    accepted: list[str] = []

    async def client(i: int) -> None:
        headers = {"Idempotency-Key": f"run-{i}"}
        for _ in range(3):  # the client's own retries, always with its key
            async with http.post(
                f"{stack.proxy_url}{SUBMIT}", json=body(f"g{i}"), headers=headers
            ) as resp:
                doc = await resp.json()
                if resp.status == 200:
                    accepted.append(doc["data"]["task_id"])
                    return

    await asyncio.gather(*(client(i) for i in range(30)))
    ids = set(accepted)
    assert len(ids) == stack.sim.counters.tasks_created
    within = bound_for(config, len(ids))
    await asyncio.gather(*(wait_terminal(http, stack.proxy_url, t, within) for t in ids))
    stack.sim.settle()
    assert await ledger_total(stack) == stack.sim.billed_total_micros()


async def test_auto_dedupe_window_without_a_key(
    make_stack: Any, http: aiohttp.ClientSession
) -> None:
    """With the dedupe window on, an identical body from one caller is replayed, not rebought."""
    stack = await make_stack(idempotency={"auto_dedupe_window_seconds": 60})
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body("h")) as first:
        first_doc = await first.json()
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body("h")) as again:
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await again.json() == first_doc
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body("other")) as different:
        assert different.status == 200
    assert stack.sim.counters.tasks_created == 2


async def test_same_request_in_another_layout_is_the_same_request(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Key order and whitespace do not make a different request: the retry is replayed."""
    headers = {"Idempotency-Key": "layout-1", "Content-Type": "application/json"}
    first = b'{"prompt": "a fox", "duration": 6, "resolution": "768P"}'
    second = b'{\n  "resolution":"768P",\n  "duration":6,\n  "prompt":"a fox"\n}'
    async with http.post(f"{stack.proxy_url}{SUBMIT}", data=first, headers=headers) as resp:
        task_id = (await resp.json())["data"]["task_id"]
    async with http.post(f"{stack.proxy_url}{SUBMIT}", data=second, headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Idempotent-Replayed"] == "true"
    assert stack.sim.counters.tasks_created == 1
    store = stack.runtime.store
    assert store is not None
    job = await store.get_job(task_id)
    assert job is not None
    assert job.input_hash is not None
    assert len(job.input_hash) == 64
