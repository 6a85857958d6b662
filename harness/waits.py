"""The one condition wait and the bounds every wait is derived from.

A wait is bounded by what the thing waited on needs on an idle machine times ``LOAD``: the
suite runs on a loaded 2-core machine (CI beside other jobs, a laptop building), where an
idle-machine figure ~4x over is still normal. A bound only decides how long a failing wait
takes to say so; a passing one never waits it out. So bounds are generous, named for what
they cover, and never a tight fixed cap.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Awaitable, Callable

from proxy.config import RetrySettings
from proxy.simulator import SimulatorConfig
from proxy.stores import open_store
from proxy.stores.records import JobRecord

LOAD = float(os.environ.get("TEST_LOAD_FACTOR", "5"))
SHORT_WAIT_S = 3.0 * LOAD
"""An in-process consequence of something already done: a log line, a gauge, a background
loop's next round at test intervals, a task of the ``fast`` simulator preset finishing."""
REQUEST_S = 4.0 * LOAD
"""One HTTP exchange through the proxy and the simulator, without an upstream retry wait."""
PROCESS_START_S = 6.0 * LOAD
"""A Python process importing the proxy, migrating its store and listening (~2-4 s idle)."""
PROCESS_EXIT_S = 2.0 * LOAD
"""A process handling SIGTERM (or SIGKILL) and exiting."""
RETRY_BUDGET_S = RetrySettings().total_seconds
"""The longest the proxy retries one upstream call. It honours the wait a 429 asks for
(``X-RateLimit-Reset``: the simulator's is the next minute boundary, up to 60 s away) while it
fits this budget, so one submit or poll can take this long before it answers."""


def bound_for(sim: SimulatorConfig, tasks: int = 1) -> float:
    """How long ``tasks`` tasks submitted together to ``sim`` can take to be terminal through
    the proxy: their lifecycle (pending, longest processing, a stall, the team's concurrency
    limit running them in rounds) on a loaded machine, plus one retry budget when ``sim``
    answers request faults (a 429's reset wait; retries of 5xx are short)."""
    lifecycle = sim.pending_seconds + sim.processing_seconds[1]
    rounds = -(-tasks // sim.concurrency_limit) if sim.concurrency_limit else 1
    bound = rounds * lifecycle * LOAD + SHORT_WAIT_S
    if sim.rate_stall:
        bound += sim.stall_seconds
    faults = sim.rate_429 + sim.rate_500 + sim.rate_503 + sim.rate_malformed + sim.rate_stall
    if faults:
        bound += RETRY_BUDGET_S
    return bound


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]],
    within: float = SHORT_WAIT_S,
    what: str = "condition",
) -> None:
    """Wait until ``check()`` (a plain or an async predicate) holds, polling every 20 ms; fail
    after ``within`` seconds, naming ``what`` was waited for. For state with no change feed to
    await (a store, a registry, /proc); an event or a future is awaited directly instead."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        answer = check()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {within:.0f} s")
        await asyncio.sleep(0.02)


async def wait_all_terminal(
    store_url: str, task_ids: list[str], within: float = 40.0
) -> list[JobRecord]:
    """The jobs, once all are terminal in the store at ``store_url`` (it has no change feed
    to await)."""
    store = await open_store(store_url)
    try:
        async with asyncio.timeout(within):
            while True:
                jobs = [await store.get_job(t) for t in task_ids]
                done = [j for j in jobs if j is not None and j.terminal]
                if len(done) == len(task_ids):
                    return done
                await asyncio.sleep(0.2)
    finally:
        await store.close()
