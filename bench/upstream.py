"""The benchmark's upstream: the simulator, set up for load.

Run: ``python -m bench.upstream --host 127.0.0.1 --port 9100`` (``bench.run`` starts it).

It is the embedded simulator (``proxy.simulator``) with three differences, all
needed to measure a proxy in front of it rather than the simulator's own growth:

- no team concurrency limit and a balance that cannot run out, so a submit flood
  answers 200s instead of 429 (concurrency) and 402 (balance);
- every ``PRUNE_SECONDS`` it forgets its request log (the simulator's ledger keeps
  indexes of tasks in flight and of money per team, so its per-request cost does not
  grow with the tasks a run piles up; the log is only memory);
- ``POST /_sim/bench/pin/{task_id}?state=pending|done`` keeps a task across pruning
  and fixes its status: ``pending`` forever, or ``done`` (success) from now on. The
  poll benchmarks use it so their task's status cannot change during a run;
- ``POST /_sim/bench/bulk?count=N`` creates ``N`` tasks at once (as ``N`` submits of the
  benchmark body would) and answers their ids: the watcher benchmark's 10,000 jobs in
  flight, made in a fraction of a second. ``--pending-seconds`` sets how long tasks stay
  pending (default 60).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
from collections.abc import Sequence
from decimal import Decimal

from aiohttp import web

from proxy.simulator import build_schema_app
from proxy.simulator.app import build_app as build_simulator_app
from proxy.simulator.config import SimulatorConfig
from proxy.simulator.core import DEFAULT_TEAM, Simulator
from proxy.simulator.http import SIM
from proxy.simulator.models import MODELS

PRUNE_SECONDS = 0.1
BALANCE_USD = Decimal(10) ** 9
KEEP_PROMPT = "bench: keep this task"
KEEP = web.AppKey("bench_keep", set[str])
BULK_SLUG = "minimax/hailuo-02-t2v"
BULK_BODY = {"prompt": "a red fox running through snow", "duration": 6, "resolution": "768P"}


def bench_config(seed: int = 0, pending_seconds: float = 60.0) -> SimulatorConfig:
    """The fast preset, unlimited: no concurrency cap, an inexhaustible balance.

    Tasks stay pending for a minute (``pending_seconds``) unless pinned ``done``: nothing
    a benchmark submits needs to progress, and a pinned task cannot race to a terminal state.
    """
    return SimulatorConfig.fast(
        seed=seed,
        concurrency_limit=0,
        initial_balance_usd=BALANCE_USD,
        pending_seconds=pending_seconds,
    )


async def pin(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    task_id = request.match_info["task_id"]
    task = sim.accounts.tasks.get(task_id)
    if task is None:
        return web.json_response({"error": f"no task {task_id}"}, status=404)
    state = request.query.get("state", "pending")
    if state == "pending":
        task.processing_at = task.done_at = math.inf
    elif state == "done":
        task.processing_at = task.done_at = sim.clock()
        task.outcome = "success"
    else:
        return web.json_response({"error": "state must be pending or done"}, status=400)
    request.app[KEEP].add(task_id)
    return web.json_response({"task_id": task_id, "status": sim.status(task_id)})


async def bulk(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    try:
        count = int(request.query.get("count", "1"))
    except ValueError:
        count = -1
    if not 1 <= count <= 1_000_000:
        return web.json_response({"error": "count must be 1..1000000"}, status=400)
    spec = MODELS[BULK_SLUG]
    ids = [sim.create_task(DEFAULT_TEAM, spec, BULK_BODY).task_id for _ in range(count)]
    return web.json_response({"task_ids": ids})


def prune(sim: Simulator) -> None:
    """Forget the request log the benchmark piles up."""
    sim.request_log.clear()


async def _prune_forever(app: web.Application) -> None:
    while True:
        await asyncio.sleep(PRUNE_SECONDS)
        prune(app[SIM])


def build_app(sim: Simulator) -> web.Application:
    app = build_simulator_app(sim)
    app[KEEP] = set()
    app.router.add_post("/_sim/bench/pin/{task_id:.+}", pin)
    app.router.add_post("/_sim/bench/bulk", bulk)
    return app


async def serve(
    host: str, port: int, seed: int, pending_seconds: float, schema_port: int = 0
) -> None:
    sim = Simulator(bench_config(seed, pending_seconds))
    app = build_app(sim)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    schemas = web.AppRunner(build_schema_app(sim), access_log=None)
    await runner.setup()
    await schemas.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        await web.TCPSite(schemas, host, schema_port).start()
        api_port, schema_bound = runner.addresses[0][1], schemas.addresses[0][1]
        print(
            f"bench upstream listening on http://{host}:{api_port} "
            f"(schemas on http://{host}:{schema_bound})",
            file=sys.stderr,
            flush=True,
        )
        async with asyncio.TaskGroup() as group:
            pruner = group.create_task(_prune_forever(app))
            await stop.wait()
            pruner.cancel()
    finally:
        await schemas.cleanup()
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pending-seconds", type=float, default=60.0)
    parser.add_argument(
        "--schema-port", type=int, default=0, help="the schema origin's port (0: a free one)"
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.seed, args.pending_seconds, args.schema_port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
