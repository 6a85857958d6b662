"""Balance reconciliation end to end: spend made directly at the simulator is unexplained."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from proxy.governance import report
from tests.e2e.conftest import KEY, Stack
from tests.e2e.test_client_flow import HAILUO
from tests.e2e.test_watcher import FAST_WATCHER, _until_terminal

INTERVAL = 0.5
DIRECT_COST = 0.324  # minimax/hailuo-02-t2v, 6 s at 768P


def balance_settings() -> dict[str, Any]:
    return {
        **FAST_WATCHER,
        "upstream": {"api_key": "sk-watcher-key-for-balance"},
        "balance": {"enabled": True, "interval_seconds": INTERVAL, "lease_seconds": 5},
    }


def gauge(stack: Stack, name: str) -> float | None:
    return stack.metrics.registry.get_sample_value(name, {"team": "upstream"})


async def read_after(stack: Stack, after: float, within: float) -> None:
    """Wait for a reconciliation round that read the balance after ``after``."""
    store = stack.runtime.store
    assert store is not None
    async with asyncio.timeout(within):
        while True:
            reading = await store.get_balance_reading("upstream")
            if reading is not None and reading.read_at > after:
                return
            await asyncio.sleep(0.05)


async def test_spend_made_directly_at_the_upstream_is_unexplained_within_one_period(
    make_stack: Any, http: aiohttp.ClientSession
) -> None:
    """Jobs through the proxy are explained; a task bought directly shows up as unexplained."""
    stack: Stack = await make_stack(**balance_settings())
    ids = []
    for i in range(2):
        body = {**HAILUO, "prompt": f"through the proxy {i}"}
        async with http.post(f"{stack.proxy_url}/api/v1/minimax/hailuo", json=body) as resp:
            assert resp.status == 200
            ids.append((await resp.json())["data"]["task_id"])
    await _until_terminal(stack, ids)
    await read_after(stack, time.time(), within=10 * INTERVAL)
    assert gauge(stack, "modellix_proxy_unexplained_spend_usd") == 0

    direct = {**HAILUO, "prompt": "bought directly, bypassing the proxy"}
    headers = {"Authorization": KEY}
    async with aiohttp.ClientSession(headers=headers) as raw:
        async with raw.post(f"{stack.sim_url}/api/v1/minimax/hailuo-02-t2v", json=direct) as resp:
            assert resp.status == 200
            task_id = (await resp.json())["data"]["task_id"]
        async with asyncio.timeout(10):
            while True:
                async with raw.get(f"{stack.sim_url}/api/v1/tasks/{task_id}") as resp:
                    if (await resp.json())["data"]["status"] == "success":
                        break
                await asyncio.sleep(0.05)
    billed_at = time.time()
    await read_after(stack, billed_at, within=2 * INTERVAL + 5)  # the next round, at the latest
    assert gauge(stack, "modellix_proxy_unexplained_spend_usd") == DIRECT_COST
    assert gauge(stack, "modellix_proxy_unexplained_spend_window_usd") == DIRECT_COST
    assert gauge(stack, "modellix_proxy_balance_topups_usd") == 0
    assert gauge(stack, "modellix_proxy_upstream_balance_usd") == pytest.approx(
        100 - 3 * DIRECT_COST
    )
    store = stack.runtime.store
    assert store is not None
    reading = await store.get_balance_reading("upstream")
    assert reading is not None
    assert reading.unexplained_micros == 324_000
    [line] = await report.unexplained_spend(store)
    assert (line["team"], line["unexplained_usd"], line["topups_usd"]) == (
        "upstream",
        "0.324000",
        "0.000000",
    )
