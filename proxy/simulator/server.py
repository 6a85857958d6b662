"""Running the simulator as a server: in-process for tests and demos, or standalone.

- ``async with running(config) as handle:`` serves on loopback (port 0 picks a free
  port) and yields ``handle.url`` (the API origin), ``handle.schema_url`` (the schema
  origin, a listener of its own) and ``handle.sim``;
- ``await serve(config, host, port)`` serves until cancelled, then shuts down
  gracefully (stalled answers are released at once);
- ``run(host, port, config)`` is the blocking entry point (SIGINT/SIGTERM stop it);
- ``main(argv)`` parses the options of ``build_parser`` (``python -m proxy.simulator``
  and ``modellix-proxy simulator`` run it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from proxy.simulator.app import build_app
from proxy.simulator.config import SimulatorConfig
from proxy.simulator.core import Simulator
from proxy.simulator.schema_app import build_schema_app

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
    schema_port: int

    @property
    def url(self) -> str:
        """The API origin (api.modellix.ai's role): the upstream base URL."""
        return _origin(self.host, self.port)

    @property
    def schema_url(self) -> str:
        """The schema origin (www.modellix.ai's role): ``/models/{slug}/api_schema``."""
        return _origin(self.host, self.schema_port)


def _origin(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def running(
    config: SimulatorConfig | None = None,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    schema_port: int | None = None,
    clock: Callable[[], float] = time.time,
    sim: Simulator | None = None,
) -> AsyncIterator[RunningSimulator]:
    """Serve a simulator for the duration of the block: the API and the schema origin.

    ``schema_port`` ``None``: ``port + 1`` when ``port`` is given, else a free port.
    """
    sim = sim or Simulator(config, clock)
    if schema_port is None:
        schema_port = port + 1 if port else 0
    api = web.AppRunner(build_app(sim), shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None)
    schemas = web.AppRunner(build_schema_app(sim), access_log=None)
    await api.setup()
    await schemas.setup()
    try:
        await web.TCPSite(api, host, port).start()
        await web.TCPSite(schemas, host, schema_port).start()
        yield RunningSimulator(sim, host, _bound_port(api), _bound_port(schemas))
    finally:
        await schemas.cleanup()
        await api.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])


async def serve(
    config: SimulatorConfig,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    schema_port: int | None = None,
    on_ready: Callable[[RunningSimulator], None] | None = None,
) -> None:
    """Serve until cancelled, then shut down gracefully."""
    async with running(config, host, port, schema_port=schema_port) as handle:
        if on_ready is not None:
            on_ready(handle)
        await asyncio.Event().wait()


def run(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    config: SimulatorConfig | None = None,
    schema_port: int | None = None,
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM."""
    asyncio.run(_run_until_signal(config or SimulatorConfig(), host, port, schema_port))


async def _run_until_signal(
    config: SimulatorConfig, host: str, port: int, schema_port: int | None
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)

    def announce(handle: RunningSimulator) -> None:
        print(
            f"modellix simulator listening on {handle.url} (schemas on {handle.schema_url})",
            file=sys.stderr,
            flush=True,
        )

    async with running(config, host, port, schema_port=schema_port) as handle:
        announce(handle)
        await stop.wait()


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the simulator's options to ``parser`` (for a CLI subcommand) or a new one."""
    parser = parser or argparse.ArgumentParser(description="Run the Modellix upstream simulator")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the API origin's port")
    parser.add_argument(
        "--schema-port",
        type=int,
        default=None,
        help="the schema origin's port (default: --port + 1; 0 picks a free one)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", choices=PRESETS, default="default")
    parser.add_argument(
        "--tier",
        type=_tier,
        default=None,
        help="limits by funding tier: auto (by each team's top-ups) or a tier index "
        "(default: fixed limits)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="tasks a team runs at once (0: unlimited)"
    )
    parser.add_argument(
        "--rpm", type=int, default=None, help="API requests per minute and team (0: unlimited)"
    )
    parser.add_argument(
        "--kling-rpm", type=int, default=None, help="Kling submits per minute and team"
    )
    parser.add_argument(
        "--no-billing",
        dest="report_billing",
        action="store_false",
        help="leave data.billing out of finished task answers",
    )
    parser.add_argument(
        "--config-json",
        default="{}",
        metavar="JSON",
        help="further SimulatorConfig fields as a JSON object (the options above win)",
    )
    return parser


def _tier(text: str) -> str | int:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a tier is 'auto' or a tier index") from None


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The configuration the parsed ``build_parser`` options describe."""
    extra = json.loads(args.config_json)
    if not isinstance(extra, dict):
        raise ValueError("--config-json must be a JSON object")
    options: dict[str, object] = {"seed": args.seed}
    if not args.report_billing:
        options["report_billing"] = False
    for option, field in (
        ("tier", "tier"),
        ("concurrency", "concurrency_limit"),
        ("rpm", "rpm_limit"),
        ("kling_rpm", "kling_rpm_limit"),
    ):
        if getattr(args, option) is not None:
            options[field] = getattr(args, option)
    return SimulatorConfig.preset(args.preset, **{**extra, **options})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run(args.host, args.port, config_from_args(args), args.schema_port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
