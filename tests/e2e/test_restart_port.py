"""A busy proxy restarts on its own port at once, whatever the port has seen.

A proxy that served traffic leaves server-side ``TIME_WAIT`` sockets on its port for up
to a minute after it exits. Each case serves polls on connections the proxy closes (so
those sockets exist, checked in ``/proc/net/tcp``) and holds keep-alive connections open,
stops the proxy (kill -9 of every process, as a container runtime or systemd does; kill
-9 of the supervisor alone, whose workers then finish their requests; or SIGTERM), starts
a new one on the same ports within one second and sees it ready and serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.ports import free_ports
from harness.postgres import fresh_postgres
from harness.processes import ProxyProcess, child_pids, start_proxy_on
from harness.waits import wait_until
from proxy.simulator import Simulator, SimulatorConfig, build_app

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = pytest.mark.slow
HEADERS = {"Authorization": "Bearer sk-restart-client"}
TIME_WAIT = "06"
POLLS = 60


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def time_wait_sockets(port: int) -> int:
    """Sockets in TIME_WAIT whose local port is ``port`` (IPv4 and IPv6)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
                fields = line.split()
                if fields[3] == TIME_WAIT and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


async def serve_traffic(proc: ProxyProcess) -> None:
    """Polls on connections the proxy closes (``Connection: close``)."""
    connector = aiohttp.TCPConnector(force_close=True, limit=8)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def poll(i: int) -> None:
            headers = {**HEADERS, "Connection": "close"}
            async with session.get(f"{proc.url}/api/v1/tasks/gone-{i}", headers=headers) as resp:
                await resp.read()
                assert resp.status == 404  # the simulator's answer, passed on

        await asyncio.gather(*(poll(i) for i in range(POLLS)))


async def stop(proc: ProxyProcess, how: str) -> None:
    """Stop the proxy as ``how`` says; return once its processes are gone."""
    pids = {proc.process.pid, *child_pids(proc.process.pid)}
    if how == "kill-9":  # every process of the group, as a container runtime does
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    elif how == "kill-9-supervisor":  # the workers notice and finish their requests
        proc.process.send_signal(signal.SIGKILL)
    else:
        proc.process.send_signal(signal.SIGTERM)
    await proc.kill(signal.SIGKILL if how.startswith("kill") else signal.SIGTERM)
    if how != "kill-9-supervisor":

        async def gone() -> bool:
            return not any(alive(pid) for pid in pids)

        await wait_until(gone, within=20)


@pytest.fixture
async def sim_url(aiohttp_server: ServerFactory) -> str:
    sim = Simulator(SimulatorConfig.fast(concurrency_limit=0))
    return str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")


@contextlib.asynccontextmanager
async def store_for(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'restart.db'}"
        return
    async with fresh_postgres("test_restart") as url:
        yield url


PG = pytest.mark.postgres
CASES = [
    pytest.param("sqlite", 1, 1, "kill-9", id="sqlite-workers1-kill9"),
    pytest.param("sqlite", 1, 1, "sigterm", id="sqlite-workers1-sigterm"),
    pytest.param("postgres", 1, 1, "kill-9", id="pg-workers1-kill9", marks=PG),
    pytest.param("postgres", 1, 1, "sigterm", id="pg-workers1-sigterm", marks=PG),
    pytest.param("postgres", 2, 2, "kill-9", id="pg-workers2-kill9", marks=PG),
    pytest.param("postgres", 2, 2, "sigterm", id="pg-workers2-sigterm", marks=PG),
    pytest.param("postgres", 2, 2, "kill-9-supervisor", id="pg-workers2-kill9-sup", marks=PG),
    # The TIME_WAIT sockets of one process (no SO_REUSEPORT), then a group of workers: the
    # case that failed (a single-process proxy's port, then ``workers: auto`` on PostgreSQL).
    pytest.param("postgres", 1, 2, "kill-9", id="pg-workers1-then-2-kill9", marks=PG),
    pytest.param("postgres", 1, 2, "sigterm", id="pg-workers1-then-2-sigterm", marks=PG),
    pytest.param("postgres", 2, 1, "sigterm", id="pg-workers2-then-1-sigterm", marks=PG),
]


@pytest.mark.parametrize(("store", "workers", "then", "how"), CASES)
async def test_a_busy_proxy_restarts_on_its_port_at_once(
    sim_url: str, tmp_path: Path, store: str, workers: int, then: int, how: str
) -> None:
    """Served traffic, stopped, started again on the same ports within a second: ready."""
    port, admin_port = free_ports(2)
    log = tmp_path / "proxy.log"
    async with store_for(store, tmp_path) as store_url:
        env = proxy_env(sim_url, store_url, MODELLIX_PROXY_WORKERS=str(workers))
        first = await start_proxy_on(env, log, port, admin_port)
        second: ProxyProcess | None = None
        try:
            await serve_traffic(first)
            assert time_wait_sockets(port) > 0  # what made a restart fail
            idle = aiohttp.ClientSession()  # a keep-alive connection open at the stop
            async with idle.get(f"{first.url}/healthz") as resp:
                assert resp.status == 200
            try:
                await stop(first, how)
            finally:
                await idle.close()
            stopped = time.monotonic()
            assert time_wait_sockets(port) > 0
            env["MODELLIX_PROXY_WORKERS"] = str(then)
            second = await start_proxy_on(env, log, port, admin_port)
            started_within = time.monotonic() - stopped
            await serve_traffic(second)  # serving, not only ready
            print(
                f"{store} workers={workers}->{then} {how}: "
                f"ready {started_within:.2f} s after the stop"
            )
            assert "Traceback" not in log.read_text(errors="replace")
        finally:
            for proc in (first, second):
                if proc is not None:
                    for pid in child_pids(proc.process.pid):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    with contextlib.suppress(Exception):
                        await proc.kill()
