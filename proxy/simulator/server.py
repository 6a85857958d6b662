"""Running the simulator as a server: in-process for tests and demos, or standalone.

- ``async with running(config) as handle:`` serves on loopback (port 0 picks a free
  port) and yields ``handle.url`` and ``handle.sim``;
- ``await serve(config, host, port)`` serves until cancelled, then shuts down
  gracefully (stalled answers are released at once);
- ``run(host, port, config)`` is the blocking entry point (SIGINT/SIGTERM stop it);
- ``main(argv)`` parses ``--host --port --seed --preset fast|realistic|default``
  (``python -m proxy.simulator`` runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from proxy.simulator.config import SimulatorConfig
from proxy.simulator.core import Simulator

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
PRESETS = ("default", "fast", "realistic")
SHUTDOWN_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator being served: where, and its state for assertions."""

    sim: Simulator
    host: str
    port: int

    @property
    def url(self) -> str:
        """The origin to use as the upstream base URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@contextlib.asynccontextmanager
async def running(
    config: SimulatorConfig | None = None,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    clock: Callable[[], float] = time.time,
    sim: Simulator | None = None,
) -> AsyncIterator[RunningSimulator]:
    """Serve a simulator for the duration of the block."""
    sim = sim or Simulator(config, clock)
    runner = web.AppRunner(sim.create_app(), shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        yield RunningSimulator(sim, host, int(bound[1]))
    finally:
        await runner.cleanup()


async def serve(
    config: SimulatorConfig,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    on_ready: Callable[[RunningSimulator], None] | None = None,
) -> None:
    """Serve until cancelled, then shut down gracefully."""
    async with running(config, host, port) as handle:
        if on_ready is not None:
            on_ready(handle)
        await asyncio.Event().wait()


def run(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, config: SimulatorConfig | None = None
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM."""
    asyncio.run(_run_until_signal(config or SimulatorConfig(), host, port))


async def _run_until_signal(config: SimulatorConfig, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)

    def announce(handle: RunningSimulator) -> None:
        print(f"modellix simulator listening on {handle.url}", file=sys.stderr, flush=True)

    async with running(config, host, port) as handle:
        announce(handle)
        await stop.wait()


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the simulator's options to ``parser`` (for a CLI subcommand) or a new one."""
    parser = parser or argparse.ArgumentParser(description="Run the Modellix upstream simulator")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", choices=PRESETS, default="default")
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The configuration the parsed ``build_parser`` options describe."""
    return SimulatorConfig.preset(args.preset, seed=args.seed)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run(args.host, args.port, config_from_args(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
