"""Run the demo: simulator, proxy (and Prometheus if installed), workload, progress, summary."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import aiohttp

from proxy.config import Settings
from proxy.demo.prometheus import PrometheusProcess
from proxy.demo.summary import print_summary
from proxy.demo.workload import PROJECTS, TEAMS, Workload
from proxy.server import Running, start
from proxy.simulator import SimulatorConfig
from proxy.simulator.server import running
from proxy.state import RUNTIME
from proxy.telemetry.logging import close_access_writer, configure_logging

WORKDIR = Path(".demo")


def _free(port: int) -> int:
    """``port`` if it is free on loopback, else an ephemeral one."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def demo_settings(upstream: str, port: int, admin_port: int, db: Path) -> Settings:
    # No price table: every model is priced from the upstream's model list, and every
    # successful job settles at what the upstream charged (data.billing.amount).
    return Settings.model_validate(
        {
            "listen": {"host": "127.0.0.1", "port": _free(port)},
            "admin": {"host": "127.0.0.1", "port": _free(admin_port), "token": "demo-admin-token"},
            "upstream": {"origin": upstream},
            "store": {"url": f"sqlite:///{db}"},
            "identity": {"teams": list(TEAMS), "projects": list(PROJECTS)},
            "governance": {
                "budgets": [
                    # studio-b runs out during the demo: its later submits get 402 with the details
                    {
                        "name": "studio-b-daily",
                        "scope": "team",
                        "subject": "studio-b",
                        "window": "day",
                        "limit_usd": "4.00",
                    },
                    {
                        "name": "all-teams-monthly",
                        "scope": "global",
                        "window": "month",
                        "limit_usd": "250.00",
                        "hard": False,
                    },
                ]
            },
            "watcher": {
                "first_check_seconds": 3,
                "base_delay_seconds": 1,
                "max_delay_seconds": 4,
                "tick_seconds": 0.5,
                "client_grace_seconds": 3,
            },
            "models": {"preflight": {"mode": "off"}},
        }
    )


def interactive() -> bool:
    """Whether someone is at a terminal (not a script or CI): then the demo stays up."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def run_demo(
    seconds: float = 60.0, port: int = 8080, seed: int = 7, keep_open: bool | None = None
) -> int:
    """Run the demo; ``keep_open`` (default: when run from a terminal) waits for Ctrl-C."""
    if WORKDIR.exists():
        shutil.rmtree(WORKDIR)
    WORKDIR.mkdir()
    stay = interactive() if keep_open is None else keep_open
    with (WORKDIR / "proxy.log").open("a", encoding="utf-8") as log_file:
        try:
            return asyncio.run(_demo(seconds, port, seed, sys.stdout, log_file, stay))
        finally:
            close_access_writer()  # the access lines still queued, before the file closes


async def until_interrupted() -> None:
    """Wait for Ctrl-C (SIGINT) or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def _closing(out: TextIO, proxy: Running, sim_url: str, keep_open: bool) -> None:
    if keep_open:
        out.write(
            "\nThe proxy and the simulator stay up until you press Ctrl-C:\n"
            f"  export MODELLIX_BASE_URL={proxy.base_url}\n"
            f"  proxy {proxy.base_url}  (admin and /metrics on port {proxy.admin_port}),"
            f" simulator {sim_url}\n"
        )
    else:
        out.write(
            "\nThe demo has stopped the proxy and the simulator (no terminal to keep them up "
            "for).\nRun `make demo` from a terminal to keep them up afterwards, or `make serve`"
            " for a proxy of your own.\n"
        )
    out.flush()


async def _demo(
    seconds: float, port: int, seed: int, out: TextIO, log_file: TextIO, keep_open: bool = False
) -> int:
    configure_logging("info", "json", stream=log_file)
    sim_config = SimulatorConfig(
        seed=seed,
        pending_seconds=1.0,
        processing_seconds=(3.0, 9.0),
        concurrency_limit=0,
        initial_balance_usd=Decimal(500),
        rate_503=0.03,
        rate_429=0.02,
    )
    async with running(sim_config) as sim:
        settings = demo_settings(sim.url, port, 9464, WORKDIR / "demo.db")
        proxy = await start(settings)
        prometheus = PrometheusProcess.start_if_installed(WORKDIR, proxy.admin_port)
        try:
            _banner(out, proxy, prometheus, seconds)
            workload = Workload(proxy.base_url, seed)
            await _drive(workload, proxy, seconds, out)
            await _drain(proxy, out)
            await workload.close()
            consistent = await print_summary(out, proxy, sim.sim, workload, settings)
            _closing(out, proxy, sim.url, keep_open)
            if keep_open:
                await until_interrupted()
                out.write("stopping...\n")
        finally:
            await proxy.stop()
            if prometheus is not None:
                prometheus.stop()
    if not consistent:  # finance truth is the product: a demo that shows otherwise fails
        out.write("the ledger and the simulator's billing differ: see above\n")
        return 1
    return 0


def _banner(
    out: TextIO, proxy: Running, prometheus: PrometheusProcess | None, seconds: float
) -> None:
    out.write(
        "\nModellix proxy demo: proxy in front of the embedded Modellix simulator (no key needed)\n"
        f"  client base URL:   {proxy.base_url}      (export MODELLIX_BASE_URL={proxy.base_url})\n"
        f"  metrics:           http://127.0.0.1:{proxy.admin_port}/metrics\n"
        f"  admin API:         http://127.0.0.1:{proxy.admin_port}/admin/jobs"
        "   (Authorization: Bearer demo-admin-token)\n"
    )
    if prometheus is not None:
        out.write(f"  Prometheus:        {prometheus.url}   (alert rules loaded)\n")
    else:
        out.write(
            "  Prometheus:        not installed (apt-get install prometheus to see it live)\n"
        )
    out.write(
        f"  logs:              {WORKDIR / 'proxy.log'}\n\nrunning a {seconds:.0f}s workload...\n\n"
    )
    out.flush()


async def _counts(proxy: Running) -> dict[str, int]:
    store = proxy.app[RUNTIME].store
    if store is None:
        return {}
    rows = await store.spend_summary(0, time.time() + 1, ["status"])
    return {row.status or "?": row.jobs for row in rows}


async def _drive(workload: Workload, proxy: Running, seconds: float, out: TextIO) -> None:
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        clients = [
            asyncio.get_running_loop().create_task(workload.client(session, i, stop))
            for i in range(4)
        ]
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            await asyncio.sleep(1)
            _progress(out, time.monotonic() - started, workload, await _counts(proxy))
        stop.set()
        await asyncio.gather(*clients)
    out.write("\n")


def _progress(out: TextIO, elapsed: float, workload: Workload, counts: dict[str, int]) -> None:
    t = workload.tally
    in_flight = counts.get("pending", 0) + counts.get("processing", 0)
    line = (
        f"[{elapsed:4.0f}s] sent {t.sent:4d} | accepted {t.accepted:4d} | refused "
        f"{sum(t.refused.values()):3d} | replayed {t.replayed:3d} | in flight {in_flight:3d} | "
        f"success {counts.get('success', 0):4d} | failed {counts.get('failed', 0):3d}"
    )
    if out.isatty():
        out.write("\r" + line)
    else:
        out.write(line + "\n")
    out.flush()


async def _drain(proxy: Running, out: TextIO, limit: float = 45.0) -> None:
    """Let the watcher bring every job to its terminal state (bounded)."""
    out.write("waiting for the jobs still in flight to finish...\n")
    out.flush()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        counts = await _counts(proxy)
        if counts.get("pending", 0) + counts.get("processing", 0) == 0:
            return
        await asyncio.sleep(0.5)
