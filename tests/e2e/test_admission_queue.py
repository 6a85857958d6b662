"""The admission queue end to end: the simulator, a proxy with virtual keys, real sockets."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp

from proxy.simulator import SimulatorConfig
from proxy.stores.admission_records import QueueState
from tests.e2e.admission_support import (
    UPSTREAM_KEY,
    dispatch_order,
    poll_to_end,
    submit,
    virtual_key,
    worst_imbalance,
)
from tests.e2e.conftest import Stack

MakeStack = Callable[..., Awaitable[Stack]]


async def admission_stack(
    make_stack: MakeStack, store_url: str, sim_limit: int = 3, **admission: Any
) -> Stack:
    config = SimulatorConfig.fast(
        concurrency_limit=sim_limit,
        api_keys={UPSTREAM_KEY: "default"},
        initial_balance_usd=Decimal(1000),
    )
    return await make_stack(
        config,
        keys={"mode": "virtual", "cache_seconds": 0.1},
        upstream={"api_key": UPSTREAM_KEY},
        store={"url": store_url},
        admission={
            "enabled": True,
            "concurrency": 3,
            "tick_seconds": 0.05,
            "lease_seconds": 1.0,
            "backoff_seconds": 0.1,
            **admission,
        },
    )


async def test_a_batch_of_fifty_is_admitted_at_the_team_concurrency(
    store_url: str, make_stack: MakeStack
) -> None:
    """50 concurrent submits from two keys of one team, upstream concurrency 3: none refused,
    at most 3 running upstream at any instant, all terminal, ledger = billing, fair share."""
    stack = await admission_stack(make_stack, store_url)
    store = stack.runtime.store
    assert store is not None
    key_a = await virtual_key(store, team="studio")
    key_b = await virtual_key(store, team="studio")
    tokens = {key_a[0]: key_a[1], key_b[0]: key_b[1]}
    async with aiohttp.ClientSession() as http:
        plan = [(kid, f"shot {i} by {kid}") for i in range(25) for kid in tokens]
        answers = await asyncio.gather(
            *(submit(http, stack.proxy_url, tokens[kid], prompt) for kid, prompt in plan)
        )
        statuses = Counter(status for status, _, _ in answers)
        assert statuses == {200: 50}, statuses
        ids = [
            (kid, doc["data"]["task_id"], doc["data"]["get_result"]["url"])
            for (kid, _), (_, doc, _) in zip(plan, answers, strict=True)
        ]
        queued = [tid for _, tid, _ in ids if tid.startswith("q-")]
        assert len(queued) >= 40  # all but the first few wait for a slot
        finals = await asyncio.gather(
            *(
                poll_to_end(http, stack.proxy_url, tokens[kid], tid, url=url)
                for kid, tid, url in ids
            )
        )
    assert Counter(d["data"]["status"] for d in finals) == {"success": 50}
    snapshot = stack.sim.snapshot()
    assert snapshot["max_active"]["default"] <= 3
    assert snapshot["counters"]["concurrency_refusals"] == 0
    assert snapshot["counters"]["tasks_created"] == 50
    page = await store.list_jobs(limit=100)
    jobs = page.jobs
    assert len(jobs) == 50
    assert all(j.terminal for j in jobs)
    ledger = sum(j.final_cost_micros or 0 for j in jobs)
    assert ledger == stack.sim.billed_total_micros() == 50 * 324_000
    rows = await store.admission_rows()
    assert {r.state for r in rows} == {QueueState.DISPATCHED}
    order = dispatch_order(rows)
    imbalance = worst_imbalance(order, [f"vk:{k}" for k in tokens])
    print(  # the measured figures, for the README (pytest -s)
        f"\nadmission batch: refusals={50 - statuses[200]} queued={len(queued)}"
        f" max_active={snapshot['max_active']['default']}"
        f" upstream_429={snapshot['counters']['concurrency_refusals']}"
        f" ledger_micros={ledger} billed_micros={stack.sim.billed_total_micros()}"
        f" per_key={dict(Counter(j.caller for j in jobs))} worst_prefix_imbalance={imbalance}"
    )
    assert imbalance <= 1, order
    assert not await store.open_reservations()
