"""Proxy processes for tests that need real separate processes (restarts, replicas)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from proxy.stores import open_store
from proxy.stores.records import JobRecord
from tests.support import PROCESS_START_S

WATCHER_KEY = "sk-watcher-key-for-tests"


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports, below Linux's ephemeral range.

    Ports the kernel hands out for outgoing connections (32768 and up) could be taken
    by a test's own client sockets before the proxy binds them; these cannot.
    """
    chosen: list[int] = []
    rng = random.Random()
    while len(chosen) < count:
        port = rng.randrange(20000, 32000)
        if port in chosen:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
    return chosen


def child_pids(pid: int) -> set[int]:
    """The child processes of ``pid`` (a supervisor's workers), from ``/proc``."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii")
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry))
    return found


@dataclass
class ProxyProcess:
    process: asyncio.subprocess.Process
    port: int
    admin_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        async with asyncio.timeout(30):
            await self.process.wait()

    async def kill_group(self) -> None:
        """kill -9 of the process and its workers at once, as a container runtime does."""
        for pid in child_pids(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await self.kill(signal.SIGKILL)


def proxy_env(upstream: str, store_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELLIX_PROXY_")}
    env.update(
        {
            "MODELLIX_PROXY_UPSTREAM__ORIGIN": upstream,
            "MODELLIX_PROXY_UPSTREAM__API_KEY": WATCHER_KEY,
            "MODELLIX_PROXY_STORE__URL": store_url,
            "MODELLIX_PROXY_LOGGING__LEVEL": "warning",
            "MODELLIX_PROXY_WATCHER__FIRST_CHECK_SECONDS": "0.5",
            "MODELLIX_PROXY_WATCHER__BASE_DELAY_SECONDS": "0.3",
            "MODELLIX_PROXY_WATCHER__MAX_DELAY_SECONDS": "1",
            "MODELLIX_PROXY_WATCHER__TICK_SECONDS": "0.2",
            "MODELLIX_PROXY_WATCHER__LEASE_SECONDS": "5",
            "MODELLIX_PROXY_SHUTDOWN_GRACE_SECONDS": "2",
            # One process, as these tests kill and count it (tests/e2e/test_workers.py: more).
            "MODELLIX_PROXY_WORKERS": "1",
            # No published schemas unless a test passes the simulator's schema origin
            # (MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__ORIGIN and ..._ENABLED=true).
            "MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__ENABLED": "false",
        }
    )
    env.update(extra)
    return env


async def start_proxy(env: Mapping[str, str], log: Path) -> ProxyProcess:
    """Start ``modellix-proxy serve`` and wait until it answers ``/readyz``.

    A port chosen free can be taken by another process before the proxy binds it;
    such a start is retried on new ports.
    """
    for _ in range(3):
        try:
            return await _start_once(env, log)
        except PortTaken:
            continue
    raise AssertionError(f"could not start the proxy on free ports; see {log}")


async def start_proxy_on(
    env: Mapping[str, str], log: Path, port: int, admin_port: int
) -> ProxyProcess:
    """Start ``modellix-proxy serve`` on these ports; wait until it answers ``/readyz``."""
    try:
        return await _start_once(env, log, (port, admin_port))
    except PortTaken:
        raise AssertionError(f"port {port} or {admin_port} stayed taken; see {log}") from None


def _port_taken(log: Path) -> bool:
    return "address already in use" in log.read_text(errors="replace").lower()


class PortTaken(Exception):
    """The proxy exited at start-up because its port was taken."""


async def _start_once(
    env: Mapping[str, str], log: Path, ports: tuple[int, int] | None = None
) -> ProxyProcess:
    port, admin_port = ports or free_ports(2)
    full = dict(env)
    full["MODELLIX_PROXY_LISTEN__PORT"] = str(port)
    full["MODELLIX_PROXY_ADMIN__PORT"] = str(admin_port)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "serve", env=full, stdout=fd, stderr=fd
        )
    finally:
        os.close(fd)
    proc = ProxyProcess(process, port, admin_port, log)
    async with aiohttp.ClientSession() as session:
        async with asyncio.timeout(PROCESS_START_S):
            while True:
                if process.returncode is not None:
                    if _port_taken(log):
                        raise PortTaken
                    raise AssertionError(f"proxy exited with {process.returncode}; see {log}")
                try:
                    async with session.get(f"{proc.url}/readyz") as resp:
                        if resp.status == 200:
                            return proc
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)


async def wait_all_terminal(
    store_url: str, task_ids: list[str], within: float = 40.0
) -> list[JobRecord]:
    """The jobs, once all are terminal (the store has no change feed to await)."""
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
