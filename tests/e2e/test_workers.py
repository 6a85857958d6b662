"""``serve --workers 2`` on PostgreSQL: one port, two processes, one ledger, one /metrics.

Real processes over loopback: the supervisor and its workers are ``python -m proxy serve``
subprocesses, the simulator runs in the test's event loop. Which worker answered is read
from the ledger (``submitted_by`` is the worker's ``host:pid``) and from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from harness.config import proxy_env
from harness.postgres import fresh_postgres
from harness.processes import ProxyProcess, start_proxy
from harness.waits import PROCESS_START_S, REQUEST_S, wait_all_terminal, wait_until
from proxy.simulator import Simulator, SimulatorConfig, build_app

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]
HEADERS = {"Authorization": "Bearer sk-workers-client"}
SUBMIT = "/api/v1/minimax/hailuo-02-t2v"
JOBS = 24
POLLS = 200


def children(pid: int) -> set[int]:
    """The live (not zombie) child processes of ``pid``, from ``/proc``."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii")
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def metrics_dir_of(worker: int) -> str:
    """The multiprocess metrics directory the supervisor gave ``worker`` (its command line)."""
    argv = Path(f"/proc/{worker}/cmdline").read_bytes().decode().split("\0")
    return next(a for a in argv if a.startswith("--metrics-dir=")).split("=", 1)[1]


def is_dir(path: str) -> bool:
    return os.path.isdir(path)


def listening(pid: int, port: int) -> bool:
    """Whether process ``pid`` has a TCP socket listening on ``port`` (IPv4, ``/proc``)."""
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:
            return True
    return False


async def workers_of(proc: ProxyProcess, count: int = 2) -> set[int]:
    """The worker pids once ``count`` of them listen (start_proxy returns when one answers)."""
    pids: set[int] = set()

    async def all_listen() -> bool:
        nonlocal pids
        pids = children(proc.process.pid)
        return len(pids) == count and all(listening(pid, proc.port) for pid in pids)

    await wait_until(all_listen, PROCESS_START_S, "every worker listening")
    return pids


async def scrape(session: aiohttp.ClientSession, proc: ProxyProcess) -> dict[str, float]:
    """``/metrics`` as sums by sample name and route/status label (enough for these checks)."""
    async with session.get(f"http://127.0.0.1:{proc.admin_port}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            sums[s.name] = sums.get(s.name, 0.0) + s.value
            for label in ("route", "window", "status"):
                if label in s.labels:
                    key = f"{s.name}{{{label}={s.labels[label]}}}"
                    sums[key] = sums.get(key, 0.0) + s.value
    return sums


async def polls(session: aiohttp.ClientSession, proc: ProxyProcess, count: int) -> None:
    """``count`` polls of task ids the proxy does not know, on fresh connections."""
    connector = aiohttp.TCPConnector(force_close=True, limit=16)
    async with aiohttp.ClientSession(connector=connector, headers=HEADERS) as fresh:

        async def one(i: int) -> None:
            async with fresh.get(f"{proc.url}/api/v1/tasks/foreign-{i}") as resp:
                await resp.read()
                assert resp.status == 404  # the simulator's answer, passed on

        await asyncio.gather(*(one(i) for i in range(count)))


async def test_two_workers_serve_one_port_with_one_ledger_and_one_metrics(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Both workers answer; /metrics counts both; the watcher settles each job once; a
    killed worker is replaced without losing counts; SIGTERM lets in-flight requests end."""
    sim = Simulator(
        SimulatorConfig(
            pending_seconds=0.2,
            processing_seconds=(0.3, 0.6),
            concurrency_limit=0,
            initial_balance_usd=Decimal(1000),
            stall_seconds=1.0,
        )
    )
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    async with fresh_postgres() as store_url:
        env = proxy_env(sim_url, store_url, MODELLIX_PROXY_WORKERS="2")
        proc = await start_proxy(env, tmp_path / "workers.log")
        try:
            first = await workers_of(proc)
            async with aiohttp.ClientSession() as session:
                # Polls over fresh connections: the kernel spreads them; /metrics has them all.
                await polls(session, proc, POLLS)
                metrics = await scrape(session, proc)
                assert metrics["modellix_proxy_http_requests_total{route=poll}"] == POLLS

                # Jobs submitted through both workers; nobody polls: the watchers settle them.
                connector = aiohttp.TCPConnector(force_close=True, limit=8)
                async with aiohttp.ClientSession(connector=connector, headers=HEADERS) as fresh:

                    async def submit(i: int) -> str:
                        body = {"prompt": f"worker job {i}", "duration": 6}
                        async with fresh.post(f"{proc.url}{SUBMIT}", json=body) as resp:
                            assert resp.status == 200, await resp.text()
                            return str((await resp.json())["data"]["task_id"])

                    accepted = await asyncio.gather(*(submit(i) for i in range(JOBS)))
                jobs = await wait_all_terminal(store_url, list(accepted))
                assert {int(str(j.submitted_by).rsplit(":", 1)[1]) for j in jobs} == first
                assert all(j.status.value == "success" for j in jobs)
                ledger = sum(j.final_cost_micros or 0 for j in jobs)
                assert ledger == sim.billed_total_micros() > 0

                async def settled_once() -> bool:
                    m = await scrape(session, proc)
                    terminal = m.get("modellix_proxy_jobs_terminal_total", 0)
                    assert terminal <= JOBS  # never settled twice
                    return (
                        terminal == JOBS
                        and m.get("modellix_proxy_ledger_jobs{window=day}") == JOBS
                        and m.get("modellix_proxy_jobs_in_flight", 0) == 0
                    )

                # the shared gauges: worker 0's reading of the store
                await wait_until(settled_once, REQUEST_S)
                metrics = await scrape(session, proc)
                assert round(metrics["modellix_proxy_spend_usd_total"] * 1e6) == ledger
                assert metrics["modellix_proxy_jobs_submitted_total"] == JOBS

                # kill -9 of a worker: another takes its place; counts survive.
                victim = max(first)
                os.kill(victim, signal.SIGKILL)
                replaced: set[int] = set()

                async def restarted() -> bool:
                    nonlocal replaced
                    replaced = children(proc.process.pid)
                    return (
                        len(replaced) == 2
                        and victim not in replaced
                        and all(listening(pid, proc.port) for pid in replaced)
                    )

                await wait_until(restarted, PROCESS_START_S, "a replacement worker")
                await polls(session, proc, 50)  # served (a stopped worker would refuse some)
                metrics = await scrape(session, proc)
                assert metrics["modellix_proxy_http_requests_total{route=poll}"] == POLLS + 50

                # SIGTERM while a submit waits on the upstream: it is answered, then all exit.
                created = sim.counters.tasks_created
                body = {"prompt": "[sim:stall] last one", "duration": 6}
                in_flight = asyncio.ensure_future(
                    session.post(f"{proc.url}{SUBMIT}", json=body, headers=HEADERS)
                )

                async def sent_upstream() -> bool:
                    return sim.counters.tasks_created > created

                await wait_until(sent_upstream, REQUEST_S)
                proc.process.send_signal(signal.SIGTERM)
                async with await in_flight as resp:
                    assert resp.status == 200, await resp.text()
                async with asyncio.timeout(20):
                    assert await proc.process.wait() == 0
                assert not any(alive(pid) for pid in replaced)
        finally:
            with contextlib.suppress(Exception):
                await proc.kill()


async def test_workers_exit_when_their_supervisor_is_killed(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """kill -9 of the supervisor: its workers notice and exit; nothing is left behind."""
    sim = Simulator(SimulatorConfig.fast(concurrency_limit=0))
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    async with fresh_postgres() as store_url:
        env = proxy_env(sim_url, store_url, MODELLIX_PROXY_WORKERS="2")
        proc = await start_proxy(env, tmp_path / "orphans.log")
        pids = await workers_of(proc)
        metrics_dir = metrics_dir_of(min(pids))
        assert is_dir(metrics_dir)
        await proc.kill(signal.SIGKILL)

        async def all_gone() -> bool:
            return not any(alive(pid) for pid in pids)

        try:
            await wait_until(all_gone, PROCESS_START_S, "every worker gone")  # each stops
            assert not is_dir(metrics_dir)  # worker 0 removed what was left
        finally:
            for pid in pids:  # a failed test leaves nothing behind either
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
