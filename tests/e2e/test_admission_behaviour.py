"""The admission queue's edges: cancel, a full queue, expiry, replays, refusals, 429s,
and pass-through keys (never queued). In process, on SQLite, over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp

from proxy.simulator import SimulatorConfig
from proxy.stores.admission_records import QueueState
from proxy.stores.base import Store
from tests.e2e.admission_support import (
    UPSTREAM_KEY,
    poll_to_end,
    submit,
    virtual_key,
)
from tests.e2e.conftest import KEY, Stack

MakeStack = Callable[..., Awaitable[Stack]]
BUDGET = [{"name": "all", "scope": "global", "window": "month", "limit_usd": 500}]


async def _stack(
    make_stack: MakeStack,
    *,
    processing: tuple[float, float] = (30.0, 30.0),
    balance: str = "1000",
    **admission: Any,
) -> tuple[Stack, Store]:
    """A proxy admitting one upstream task at a time; by default the first one runs 30 s."""
    config = SimulatorConfig.fast(
        concurrency_limit=3,
        processing_seconds=processing,
        api_keys={UPSTREAM_KEY: "default"},
        initial_balance_usd=Decimal(balance),
    )
    stack = await make_stack(
        config,
        keys={"mode": "virtual", "cache_seconds": 0.1},
        upstream={"api_key": UPSTREAM_KEY},
        governance={"budgets": BUDGET},
        admission={
            "enabled": True,
            "concurrency": 1,
            "tick_seconds": 0.05,
            "lease_seconds": 1.0,
            "backoff_seconds": 0.05,
            **admission,
        },
    )
    store = stack.runtime.store
    assert store is not None
    return stack, store


async def _held(store: Store) -> int:
    return len(await store.open_reservations())


async def test_cancel_a_queued_submit(make_stack: MakeStack) -> None:
    """DELETE on a queued q- id cancels it (reservation released, poll answers failed);
    again: 409; another key: 404; an unknown q- id: 404; an upstream id: 405."""
    stack, store = await _stack(make_stack)
    _, token = await virtual_key(store, team="studio")
    _, other = await virtual_key(store, team="studio")
    origin = stack.proxy_url
    async with aiohttp.ClientSession() as http:
        status, first, _ = await submit(http, origin, token, "first")
        assert status == 200
        assert not first["data"]["task_id"].startswith("q-")
        status, queued, headers = await submit(http, origin, token, "second")
        queue_id = queued["data"]["task_id"]
        assert status == 200
        assert queue_id.startswith("q-")
        assert headers["X-Modellix-Proxy-Queued"] == "true"
        assert queued["data"]["get_result"]["url"] == f"{origin}/api/v1/tasks/{queue_id}"
        assert await _held(store) == 2

        def delete(task_id: str, who: str) -> Any:
            return http.delete(
                f"{origin}/api/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {who}"}
            )

        async with delete(queue_id, other) as r:
            assert r.status == 404
        async with delete(queue_id, token) as r:
            assert r.status == 200
            assert (await r.json())["data"] == {
                "status": "cancelled",
                "task_id": queue_id,
                "model_id": "minimax-hailuo-02-t2v",
            }
        async with delete(queue_id, token) as r:
            assert r.status == 409
        async with delete("q-" + "0" * 32, token) as r:
            assert r.status == 404
        async with delete(first["data"]["task_id"], token) as r:
            assert r.status == 405
        assert await _held(store) == 1  # only the running job's
        doc = await poll_to_end(http, origin, token, queue_id, within=5)
        assert doc["data"]["status"] == "failed"
        assert doc["message"].startswith("Cancelled")
    assert stack.sim.counters.tasks_created == 1


async def test_a_full_queue_refuses_with_retry_after(make_stack: MakeStack) -> None:
    """Past the team's max queue length a submit is refused 429 with Retry-After, its
    reservation released; nothing is sent."""
    stack, store = await _stack(make_stack, max_queue=1, full_retry_after_seconds=7)
    _, token = await virtual_key(store, team="studio")
    async with aiohttp.ClientSession() as http:
        assert (await submit(http, stack.proxy_url, token, "a"))[0] == 200
        assert (await submit(http, stack.proxy_url, token, "b"))[0] == 200
        status, doc, headers = await submit(http, stack.proxy_url, token, "c")
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert doc["error_type"] == "admission_queue_full"
    assert doc["message"].startswith("Rate limit exceeded: the admission queue of team studio")
    assert await _held(store) == 2
    assert stack.sim.counters.tasks_created == 1


async def test_a_submit_waiting_past_max_wait_expires(make_stack: MakeStack) -> None:
    """A queued submit older than max wait expires: failed with a clear message, its
    reservation and idempotency key released (the same key then submits afresh)."""
    stack, store = await _stack(make_stack, max_wait_seconds=0.3)
    _, token = await virtual_key(store, team="studio")
    async with aiohttp.ClientSession() as http:
        await submit(http, stack.proxy_url, token, "a")
        key = {"Idempotency-Key": "shot-b"}
        _, queued, _ = await submit(http, stack.proxy_url, token, "b", key)
        queue_id = queued["data"]["task_id"]
        doc = await poll_to_end(http, stack.proxy_url, token, queue_id, within=10)
        assert doc["data"]["status"] == "failed"
        assert doc["message"].startswith("Queue wait exceeded: the submit waited more than 0.3 s")
        assert await _held(store) == 1
        status, again, headers = await submit(http, stack.proxy_url, token, "b", key)
    assert status == 200
    assert "Idempotent-Replayed" not in headers
    assert again["data"]["task_id"] != queue_id
    row = await store.admission_get(queue_id)
    assert row is not None
    assert row.state is QueueState.EXPIRED


async def test_a_replay_answers_the_same_queue_id_before_and_after_dispatch(
    make_stack: MakeStack,
) -> None:
    """The same Idempotency-Key answers the same q- id while queued and once dispatched."""
    stack, store = await _stack(make_stack, processing=(0.2, 0.3))
    _, token = await virtual_key(store, team="studio")
    key = {"Idempotency-Key": "batch-7"}
    async with aiohttp.ClientSession() as http:
        _, first, _ = await submit(http, stack.proxy_url, token, "a")
        _, queued, _ = await submit(http, stack.proxy_url, token, "b", key)
        queue_id = queued["data"]["task_id"]
        status, replay, headers = await submit(http, stack.proxy_url, token, "b", key)
        assert status == 200
        assert headers["Idempotent-Replayed"] == "true"
        assert replay["data"]["task_id"] == queue_id
        await poll_to_end(http, stack.proxy_url, token, first["data"]["task_id"])
        done = await poll_to_end(http, stack.proxy_url, token, queue_id)
        assert done["data"]["status"] == "success"
        status, replay, headers = await submit(http, stack.proxy_url, token, "b", key)
    assert headers["Idempotent-Replayed"] == "true"
    assert replay["data"]["task_id"] == queue_id
    assert stack.sim.counters.tasks_created == 2
    row = await store.admission_get(queue_id)
    assert row is not None
    assert row.state is QueueState.DISPATCHED
    assert row.task_id in stack.sim.tasks


async def test_an_upstream_429_queues_and_a_refusal_fails_the_queued_job(
    make_stack: MakeStack,
) -> None:
    """A direct send refused 429 by the upstream is queued and sent later; a queued submit
    the upstream refuses (402, balance) fails with the upstream's message, money released."""
    stack, store = await _stack(make_stack, processing=(0.2, 0.3), balance="0.5")
    _, token = await virtual_key(store, team="studio")
    stack.sim.inject("429", 1, "submit")
    async with aiohttp.ClientSession() as http:
        status, first, _ = await submit(http, stack.proxy_url, token, "a")
        assert status == 200
        assert first["data"]["task_id"].startswith("q-")
        _, second, _ = await submit(http, stack.proxy_url, token, "b")
        ids = [first["data"]["task_id"], second["data"]["task_id"]]
        ends = await asyncio.gather(*(poll_to_end(http, stack.proxy_url, token, i) for i in ids))
    # the balance pays for one: whichever is sent second is refused 402 by the upstream
    assert sorted(d["data"]["status"] for d in ends) == ["failed", "success"]
    refused = next(d for d in ends if d["data"]["status"] == "failed")
    assert refused["message"].startswith("Insufficient balance")
    row = await store.admission_get(refused["data"]["task_id"])
    assert row is not None
    assert row.state is QueueState.FAILED
    assert await _held(store) == 0  # the job's money settled, the refused one's released
    assert stack.sim.counters.tasks_created == 1


async def test_pass_through_keys_are_not_queued(make_stack: MakeStack) -> None:
    """A client's own Modellix key is never stored, so its submits are never queued: the
    upstream's 429 reaches the client as today."""
    config = SimulatorConfig.fast(concurrency_limit=1, processing_seconds=(30.0, 30.0))
    stack = await make_stack(
        config, upstream={"api_key": UPSTREAM_KEY}, admission={"enabled": True, "concurrency": 1}
    )
    store = stack.runtime.store
    assert store is not None
    async with aiohttp.ClientSession(headers={"Authorization": KEY}) as http:
        answers = []
        for i in range(2):
            body = {"prompt": f"shot {i}", "duration": 6, "resolution": "768P"}
            async with http.post(f"{stack.proxy_url}/api/v1/minimax/hailuo-02-t2v", json=body) as r:
                answers.append((r.status, await r.json()))
    assert [s for s, _ in answers] == [200, 429]
    assert not answers[0][1]["data"]["task_id"].startswith("q-")
    assert await store.admission_rows() == []
