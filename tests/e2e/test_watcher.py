"""The watcher follows jobs nobody polls to their terminal state, and settles each once."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from harness.waits import SHORT_WAIT_S, bound_for, wait_until
from proxy.stores.records import JobStatus
from tests.e2e.conftest import Stack
from tests.e2e.test_client_flow import HAILUO

FAST_WATCHER = {
    "watcher": {
        "enabled": True,
        "first_check_seconds": 0.1,
        "base_delay_seconds": 0.1,
        "max_delay_seconds": 0.3,
        "tick_seconds": 0.05,
    }
}


async def _until_terminal(stack: Stack, task_ids: list[str]) -> None:
    store = stack.runtime.store
    assert store is not None

    async def all_terminal() -> bool:
        jobs = [await store.get_job(t) for t in task_ids]
        return all(j is not None and j.terminal for j in jobs)

    # the simulator's lifecycle, then the watcher's next round
    within = bound_for(stack.sim.config, len(task_ids)) + SHORT_WAIT_S
    await wait_until(all_terminal, within, "every job terminal")


async def test_unpolled_jobs_reach_terminal_and_are_settled_once(
    make_stack: Any, http: aiohttp.ClientSession
) -> None:
    """Jobs no client polls are followed by the watcher; each terminal is logged, counted once."""
    stack: Stack = await make_stack(**FAST_WATCHER)
    ids = []
    with capture_logs() as logs:
        for i in range(6):
            body = {**HAILUO, "prompt": f"watched {i}" + (" [sim:task_failed]" if i == 5 else "")}
            async with http.post(f"{stack.proxy_url}/api/v1/minimax/hailuo", json=body) as resp:
                ids.append((await resp.json())["data"]["task_id"])
        await _until_terminal(stack, ids)

        def terminal_lines() -> list[Any]:
            return [entry for entry in logs if entry["event"] == "job.terminal"]

        # The line follows the commit that made the job terminal: wait for it, not the row.
        await wait_until(lambda: len(terminal_lines()) >= len(ids), what="a job.terminal line each")
    terminal = terminal_lines()
    assert sorted(entry["task_id"] for entry in terminal) == sorted(ids)
    line = next(entry for entry in terminal if entry["status"] == "success")
    for field in (
        "correlation_id",
        "input_hash",
        "model",
        "output_urls",
        "estimated_cost_usd",
        "final_cost_usd",
        "attempts",
        "wall_clock_seconds",
    ):
        assert line[field] is not None, field
    assert line["final_cost_usd"] == 0.324
    failed = next(entry for entry in terminal if entry["status"] == "failed")
    assert failed["final_cost_usd"] == 0
    sample = stack.metrics.registry.get_sample_value
    labels = {"model": "minimax/hailuo-02-t2v", "team": "other"}
    assert sample("modellix_proxy_jobs_terminal_total", {**labels, "status": "success"}) == 5
    assert sample("modellix_proxy_jobs_terminal_total", {**labels, "status": "failed"}) == 1
    watcher_polls = sample("modellix_proxy_job_polls_total", {"source": "watcher"})
    assert watcher_polls is not None
    assert watcher_polls >= 6
    spend = sample("modellix_proxy_spend_usd_total", {**labels, "project": "other"})
    assert spend == pytest.approx(5 * 0.324)
    store = stack.runtime.store
    assert store is not None
    jobs = [await store.get_job(t) for t in ids]
    assert all(j is not None and j.watcher_polls >= 1 and j.client_polls == 0 for j in jobs)
    assert sum(1 for j in jobs if j is not None and j.status is JobStatus.FAILED) == 1


async def test_expired_jobs_leave_the_watch(make_stack: Any, http: aiohttp.ClientSession) -> None:
    """A job still open past the retention window is marked expired, once."""
    stack: Stack = await make_stack(
        watcher={**FAST_WATCHER["watcher"], "retention_seconds": 0.2, "first_check_seconds": 60}
    )
    async with http.post(f"{stack.proxy_url}/api/v1/minimax/hailuo", json=HAILUO) as resp:
        task_id = (await resp.json())["data"]["task_id"]
    await _until_terminal(stack, [task_id])
    store = stack.runtime.store
    assert store is not None
    job = await store.get_job(task_id)
    assert job is not None
    assert job.status is JobStatus.EXPIRED


async def test_unchanged_client_polls_are_batched_into_the_next_write(
    aiohttp_server: Any, http: aiohttp.ClientSession
) -> None:
    """Polls that see no change are counted in memory and written with the next change."""
    from harness.config import settings_for
    from proxy.app import create_app
    from proxy.simulator import ManualClock, Simulator, SimulatorConfig, build_app
    from proxy.state import RUNTIME

    clock = ManualClock()
    sim = Simulator(SimulatorConfig.fast(concurrency_limit=0, pending_seconds=100), clock)
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    app = create_app(settings_for(sim_url))
    base = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    async with http.post(f"{base}/api/v1/minimax/hailuo", json=HAILUO) as resp:
        task_id = (await resp.json())["data"]["task_id"]
    for _ in range(5):
        async with http.get(f"{base}/api/v1/tasks/{task_id}") as resp:
            assert (await resp.json())["data"]["status"] == "pending"
    store = app[RUNTIME].store
    assert store is not None
    job = await store.get_job(task_id)
    assert job is not None
    assert job.client_polls == 1  # the first poll was written; four are waiting in memory
    clock.advance(1000)
    async with http.get(f"{base}/api/v1/tasks/{task_id}") as resp:
        assert (await resp.json())["data"]["status"] == "success"
    job = await store.get_job(task_id)
    assert job is not None
    assert job.status is JobStatus.SUCCESS
    assert job.client_polls == 6
