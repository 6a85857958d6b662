"""The simulated upstream as a real process, with a task journal that survives kill -9.

``python -m chaos.upstream --port N --journal PATH [--config JSON] [--latency S]
[--schema-port M]`` (the schema origin, ``/models/.../api_schema``, on a port of its own)
serves ``proxy.simulator`` (same routes, faults and ``/_sim/*`` controls) with two
additions the fault suite needs:

- every task the upstream creates (i.e. every purchase) is appended to ``--journal``
  as one JSON line with one ``os.write`` before the answer is sent, so what was bought
  is known even when this process is killed or restarted (a restart starts empty);
- ``--latency S``: a submit waits up to ``S`` seconds (uniform) before the task is
  created and again up to ``S`` after, so a burst has submits in flight on both sides
  of the purchase when a fault strikes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.simulator import Simulator, SimulatorConfig, build_app, build_schema_app
from proxy.simulator.models import ModelSpec
from proxy.simulator.state import Task


class JournalSimulator(Simulator):
    """A simulator that appends every created task to a journal file."""

    def __init__(self, config: SimulatorConfig, journal_fd: int, generation: int) -> None:
        super().__init__(config)
        self._journal_fd = journal_fd
        self._generation = generation

    def create_task(
        self, team: str, spec: ModelSpec, body: Mapping[str, Any], fault: str | None = None
    ) -> Task:
        task = super().create_task(team, spec, body, fault)
        line = {
            "task_id": task.task_id,
            "slug": task.slug,
            "prompt": body.get("prompt"),
            "created_at": task.created_at,
            "cost_micros": task.cost_micros,
            "generation": self._generation,
        }
        os.write(self._journal_fd, (json.dumps(line) + "\n").encode())
        return task


def latency_middleware(seconds: float, rng: random.Random) -> Any:
    @web.middleware
    async def delay(request: web.Request, handler: Handler) -> web.StreamResponse:
        name = request.match_info.route.name or ""
        if seconds <= 0 or not name.startswith("submit"):
            return await handler(request)
        await asyncio.sleep(rng.uniform(0, seconds))
        response = await handler(request)
        await asyncio.sleep(rng.uniform(0, seconds))
        return response

    return delay


async def serve(args: argparse.Namespace) -> None:
    overrides: dict[str, Any] = json.loads(args.config)
    overrides.setdefault("task_id_prefix", f"task-g{args.generation}-")
    config = SimulatorConfig.fast(**overrides)
    fd = os.open(args.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sim = JournalSimulator(config, fd, args.generation)
    app = build_app(sim)
    app.middlewares.append(latency_middleware(args.latency, random.Random(args.generation)))
    runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
    schemas = web.AppRunner(build_schema_app(sim), access_log=None)
    await runner.setup()
    await schemas.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, "127.0.0.1", args.port, reuse_address=True).start()
        await web.TCPSite(schemas, "127.0.0.1", args.schema_port, reuse_address=True).start()
        await stop.wait()
    finally:
        await schemas.cleanup()
        await runner.cleanup()
        os.close(fd)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--schema-port", type=int, default=0, help="the schema origin's port (0: a free one)"
    )
    parser.add_argument("--journal", required=True)
    parser.add_argument("--config", default="{}", help="SimulatorConfig overrides as JSON")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--generation", type=int, default=1)
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
