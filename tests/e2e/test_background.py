"""The roster of long-running components: its order, what it skips and why, and that turning
the watcher off leaves expiry and the store-read gauges running."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import settings_for
from harness.waits import wait_until
from proxy.app import create_app
from proxy.state import METRICS, RUNTIME
from proxy.stores.records import JobStatus
from tests.e2e.conftest import Stack
from tests.e2e.test_client_flow import HAILUO
from tests.stores.helpers import new_job

StackFactory = Callable[..., Awaitable[Stack]]
ServerFactory = Callable[..., Awaitable[TestServer]]
SLUG = "minimax/hailuo-02-t2v"
EVERYTHING = {
    "upstream": {"api_key": "sk-watcher-key-for-roster"},
    "webhooks": {"enabled": True, "signing_secret": "whsec-roster-test-secret-0123456789"},
    "balance": {"enabled": True},
    "admission": {"enabled": True},
    "watcher": {"enabled": True},
    "models": {"upstream_list": {"fetch_at_start": True}},
}


async def test_every_component_runs_in_the_documented_order(make_stack: StackFactory) -> None:
    """With everything on, the roster starts the eleven components in the order the docs give."""
    stack = await make_stack(schemas=True, **EVERYTHING)
    assert stack.runtime.roster.names == (
        "outbox",
        "recovery",
        "retention",
        "model-list",
        "schemas",
        "watcher",
        "expiry",
        "gauges",
        "webhooks",
        "balance",
        "admission",
    )
    assert stack.runtime.roster.skipped == ()


async def test_what_does_not_run_is_named_with_its_reason(make_stack: StackFactory) -> None:
    """Without a watcher key or the optional features, each missing component says why."""
    stack = await make_stack(watcher={"enabled": False}, admission={"enabled": True})
    roster = stack.runtime.roster
    assert roster.names == ("outbox", "recovery", "retention", "expiry", "gauges")
    reasons = {s.name: s.reason for s in roster.skipped}
    assert set(reasons) == {"model-list", "schemas", "watcher", "webhooks", "balance", "admission"}
    assert "watcher.enabled is false" in reasons["watcher"]
    assert "upstream.api_key" in reasons["admission"]
    assert stack.runtime.admission is None  # submits go straight upstream, never queue


async def test_without_the_watcher_expiry_and_the_finance_gauges_still_run(
    make_stack: StackFactory, http: aiohttp.ClientSession
) -> None:
    """watcher.enabled false: a job settled by its client shows in the ledger spend gauge, and
    an open job past the retention is expired (its money released) all the same."""
    stack = await make_stack(watcher={"enabled": False, "gauges_seconds": 0.1, "tick_seconds": 0.1})
    store = stack.runtime.store
    assert store is not None
    assert stack.runtime.watcher is None
    async with http.post(f"{stack.proxy_url}/api/v1/minimax/hailuo", json=HAILUO) as resp:
        assert resp.status == 200
        task_id = (await resp.json())["data"]["task_id"]
    await wait_until(lambda: _client_polls_to_terminal(http, stack, task_id))

    def ledger_spend() -> float | None:
        return stack.metrics.registry.get_sample_value(
            "modellix_proxy_ledger_spend_usd",
            {
                "window": "day",
                "team": "other",
                "project": "other",
                "model": "minimax/hailuo-02-t2v",
            },
        )

    await wait_until(lambda: ledger_spend() == pytest.approx(0.324), within=30)

    old = new_job("abandoned", submitted_at=1.0, next_poll_at=None)
    await store.insert_job(old)
    await wait_until(lambda: _status_is(stack, "abandoned", JobStatus.EXPIRED), within=30)


async def _client_polls_to_terminal(
    http: aiohttp.ClientSession, stack: Stack, task_id: str
) -> bool:
    async with http.get(f"{stack.proxy_url}/api/v1/tasks/{task_id}") as resp:
        return bool((await resp.json())["data"]["status"] == "success")


async def _status_is(stack: Stack, task_id: str, status: JobStatus) -> bool:
    store = stack.runtime.store
    assert store is not None
    job = await store.get_job(task_id)
    return job is not None and job.status is status


async def test_a_worker_that_does_not_export_metrics_reads_no_store_gauges(
    aiohttp_server: ServerFactory, make_stack: StackFactory
) -> None:
    """shared_gauges=False (a --workers worker without /metrics): no gauges component at all."""
    stack = await make_stack()
    app = create_app(settings_for(stack.sim_url), shared_gauges=False)
    await aiohttp_server(app)
    roster = app[RUNTIME].roster
    assert "gauges" not in roster.names
    assert {s.name for s in roster.skipped} >= {"gauges"}
    assert app[RUNTIME].gauges is None
    refreshed = app[METRICS].registry.get_sample_value(
        "modellix_proxy_ledger_refresh_timestamp_seconds"
    )
    assert refreshed in (None, 0.0)
