"""The watcher polls due jobs concurrently, paced by its rate and in-flight limits, not by ticks.

Real stores (SQLite and PostgreSQL), real HTTP to the simulator over loopback; the
tests wait on conditions (the simulator's request log), never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from harness.config import settings_for
from harness.postgres import fresh_postgres
from proxy.app import retry_policies
from proxy.jobs.labels import Labels
from proxy.jobs.tracker import JobTracker, Replica
from proxy.jobs.watcher import Watcher
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.simulator.models import MODELS
from proxy.stores import Store, open_store
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import Upstream
from tests.stores.helpers import new_job

ServerFactory = Callable[..., Awaitable[TestServer]]
SLUG = "minimax/hailuo-02-t2v"


@pytest.fixture
def sim() -> Simulator:
    """Tasks stay pending for an hour: every poll finds a job still in flight."""
    return Simulator(
        SimulatorConfig.fast(concurrency_limit=0, pending_seconds=3600, initial_balance_usd=10**6)
    )


async def sim_url(aiohttp_server: ServerFactory, sim: Simulator) -> str:
    """One more HTTP face of the same simulator (its own port, so its own Host header)."""
    server = await aiohttp_server(build_app(sim))
    return str(server.make_url("")).rstrip("/")


async def due_jobs(store: Store, sim: Simulator, count: int) -> list[str]:
    """``count`` tasks on the simulator, each recorded as an open job due a second ago."""
    now = time.time()
    spec = MODELS[SLUG]
    ids = [sim.create_task("default", spec, {"prompt": f"p{i}"}).task_id for i in range(count)]
    jobs = [new_job(t, pinned_slug=SLUG, submitted_at=now - 30, next_poll_at=now - 1) for t in ids]
    for start in range(0, count, 50):
        await asyncio.gather(*(store.insert_job(j) for j in jobs[start : start + 50]))
    return ids


@contextlib.asynccontextmanager
async def watcher(
    store: Store, origin: str, owner: str, *, metrics: Metrics | None = None, **options: Any
) -> AsyncIterator[Watcher]:
    """A running watcher (its own upstream session), polling with a watcher key."""
    settings = settings_for(
        origin, upstream={"api_key": "sk-watcher"}, watcher={"enabled": True, **options}
    )
    metrics = metrics or Metrics()
    replica = Replica(owner)
    tracker = JobTracker(store, settings, metrics, Labels.of((SLUG,), (), ()), replica)
    upstream = Upstream(settings.upstream, metrics)
    await upstream.start()
    _, poll_policy = retry_policies(settings.upstream.retry)
    running = Watcher(tracker, upstream, poll_policy, settings, metrics, replica)
    task = asyncio.get_running_loop().create_task(running.run())
    try:
        yield running
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await upstream.close()


def polled(sim: Simulator) -> list[tuple[float, str, str]]:
    """Every poll the simulator saw: (arrival time, task id, Host it came to)."""
    return [
        (r.time, r.path.rsplit("/", 1)[1], r.headers.get("Host", ""))
        for r in sim.requests(route="poll")
    ]


async def test_polls_hundreds_of_due_jobs_at_once(
    store: Store, sim: Simulator, aiohttp_server: ServerFactory
) -> None:
    """600 due jobs are all polled within a few seconds, not one batch of 50 per 1 s tick."""
    ids = await due_jobs(store, sim, 600)
    origin = await sim_url(aiohttp_server, sim)
    started = time.monotonic()
    options: dict[str, Any] = {"batch_size": 50, "tick_seconds": 1.0, "max_in_flight": 32}
    metrics = Metrics()
    async with watcher(store, origin, "w-a", metrics=metrics, **options) as running:
        async with asyncio.timeout(20):
            await sim.wait_until(lambda: len({t for _, t, _ in polled(sim)}) >= len(ids))
            elapsed = time.monotonic() - started
            await running.writes.wait_written(len(ids))
    # The tick design needed 600 / 50 = 12 ticks of 1 s; this is bounded by the rate only.
    assert elapsed < 4.0, elapsed
    assert sorted(t for _, t, _ in polled(sim)) == sorted(ids)  # each once: no double poll
    jobs = [await store.get_job(t) for t in ids]
    assert all(j is not None and j.watcher_polls == 1 and j.watcher_attempts == 1 for j in jobs)
    assert all(j is not None and j.lease_owner is None for j in jobs)
    # No write per poll: the reschedules went in a handful of transactions.
    assert running.polls == 600
    sample = metrics.registry.get_sample_value
    assert sample("modellix_proxy_job_polls_total", {"source": "watcher"}) == 600
    assert sample("modellix_proxy_watcher_due_lag_seconds_count") == 600
    assert sample("modellix_proxy_watcher_due_lag_seconds_bucket", {"le": "5.0"}) == 600
    assert 1 <= running.writes.flushes <= 40, running.writes.flushes


async def test_respects_max_polls_per_second(
    store: Store, sim: Simulator, aiohttp_server: ServerFactory
) -> None:
    """The upstream sees no more than the configured rate (after the burst), and about that."""
    await due_jobs(store, sim, 200)
    origin = await sim_url(aiohttp_server, sim)
    rate, burst = 40.0, 8
    async with watcher(store, origin, "w-a", max_polls_per_second=rate, max_in_flight=burst):
        async with asyncio.timeout(20):
            await sim.wait_until(lambda: len(polled(sim)) >= 90)
    times = sorted(t for t, _, _ in polled(sim))
    first = times[0]
    for i, at in enumerate(times):  # the bucket's bound, with a poll of slack for timers
        assert i + 1 <= burst + rate * (at - first) + 2, (i, at - first)
    steady = times[burst:]
    achieved = (len(steady) - 1) / (steady[-1] - steady[0])
    # The bound is the property; the floor only shows the limiter does not starve polls
    # (kept loose: a loaded 2-core machine delays the timers and the polls, never speeds
    # them up; 18 a second was seen under the whole suite on a VM whose host was busy).
    assert rate * 0.25 <= achieved <= rate * 1.1, achieved


async def test_a_dead_owners_lease_is_taken_over_when_it_ends(
    store: Store, sim: Simulator, aiohttp_server: ServerFactory
) -> None:
    """Jobs leased by a replica that died are polled by another only after the lease ends."""
    ids = await due_jobs(store, sim, 20)
    leased = await store.lease_due_at("dead", time.time(), 100, 1.0)
    assert len(leased) == 20
    lease_end = min(lj.job.lease_expires_at or math.inf for lj in leased)
    origin = await sim_url(aiohttp_server, sim)
    async with watcher(store, origin, "alive", tick_seconds=0.2):
        async with asyncio.timeout(10):
            await sim.wait_until(lambda: len({t for _, t, _ in polled(sim)}) >= len(ids))
    assert min(t for t, _, _ in polled(sim)) >= lease_end


@pytest.mark.postgres
async def test_two_watchers_on_one_postgres_never_poll_a_job_at_once(
    sim: Simulator, aiohttp_server: ServerFactory
) -> None:
    """Two owners share the due jobs; a job's polls never overlap (the cadence keeps them apart)."""
    async with fresh_postgres("test_watcher") as url:
        store_a, store_b = await open_store(url), await open_store(url)
        try:
            ids = await due_jobs(store_a, sim, 300)
            origin_a = await sim_url(aiohttp_server, sim)
            origin_b = await sim_url(aiohttp_server, sim)
            fast: dict[str, Any] = {
                "first_check_seconds": 0.0,
                "base_delay_seconds": 0.2,
                "max_delay_seconds": 0.4,
                "batch_size": 20,
                "tick_seconds": 0.1,
                "flush_seconds": 0.02,
            }
            async with (
                watcher(store_a, origin_a, "w-a", **fast),
                watcher(store_b, origin_b, "w-b", **fast),
            ):
                async with asyncio.timeout(30):
                    await sim.wait_until(lambda: len(polled(sim)) >= 4 * len(ids))
        finally:
            await store_a.close()
            await store_b.close()
    by_job: dict[str, list[float]] = defaultdict(list)
    hosts: dict[str, int] = defaultdict(int)
    for at, task_id, host in polled(sim):
        by_job[task_id].append(at)
        hosts[host] += 1
    assert set(by_job) == set(ids)
    assert len(hosts) == 2
    assert min(hosts.values()) > 0.2 * sum(hosts.values()), hosts
    for stamps in by_job.values():
        stamps.sort()
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        # The shortest delay after a poll is 0.2 s - 20 %; two owners at once would be ~0.
        assert all(gap > 0.1 for gap in gaps), gaps


async def test_tick_polls_one_chunk_and_writes_its_next_polls(
    store: Store, sim: Simulator, aiohttp_server: ServerFactory
) -> None:
    """``tick()``, a round by hand, polls a chunk of due jobs and writes them before returning."""
    ids = await due_jobs(store, sim, 80)
    origin = await sim_url(aiohttp_server, sim)
    settings = settings_for(
        origin, upstream={"api_key": "sk-watcher"}, watcher={"enabled": True, "batch_size": 50}
    )
    metrics = Metrics()
    replica = Replica("w-tick")
    tracker = JobTracker(store, settings, metrics, Labels.of((SLUG,), (), ()), replica)
    upstream = Upstream(settings.upstream, metrics)
    await upstream.start()
    try:
        _, poll_policy = retry_policies(settings.upstream.retry)
        by_hand = Watcher(tracker, upstream, poll_policy, settings, metrics, replica)
        assert await by_hand.tick() == 50
        assert await by_hand.tick() == 30
        assert await by_hand.tick() == 0
    finally:
        await upstream.close()
    assert sorted(t for _, t, _ in polled(sim)) == sorted(ids)
    jobs = [await store.get_job(t) for t in ids]
    assert all(j is not None and j.lease_owner is None and j.watcher_polls == 1 for j in jobs)
