"""Unknown submit outcomes are watched: gauges of open unknown jobs and the money they hold."""

from __future__ import annotations

from typing import Any

import aiohttp

from harness.waits import wait_until
from tests.e2e.conftest import Stack
from tests.e2e.test_faults import SUBMIT, body

WATCHED = {
    "watcher": {"enabled": True, "tick_seconds": 0.05},
    "governance": {"budgets": [{"name": "all", "scope": "global", "limit_usd": "100"}]},
}


async def _until(stack: Stack, name: str, value: float) -> None:
    sample = stack.metrics.registry.get_sample_value
    await wait_until(lambda: sample(name) == value, what=f"{name} == {value}")


async def test_unknown_jobs_and_their_reservations_are_gauged(
    make_stack: Any, http: aiohttp.ClientSession
) -> None:
    """Two submits lost after sending show as two unknown jobs holding both estimates."""
    stack: Stack = await make_stack(**WATCHED)
    for tag in ("a", "b"):
        async with http.post(
            f"{stack.proxy_url}{SUBMIT}", json=body(tag, "reset_before_create")
        ) as resp:
            assert resp.status == 504
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body("ok")) as resp:
        assert resp.status == 200
    await _until(stack, "modellix_proxy_unknown_jobs", 2)
    # each holds the top of the list's $0.054-$0.12/s range for 6 s
    await _until(stack, "modellix_proxy_unknown_reserved_usd", 2 * 0.72)
    sample = stack.metrics.registry.get_sample_value
    assert sample("modellix_proxy_jobs_without_credential") == 0
