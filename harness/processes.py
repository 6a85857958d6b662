"""Real processes for asyncio callers: ``modellix-proxy serve`` and any service a test or a
fault scenario starts, each on its own ports, waited for until it answers, then stopped
(SIGTERM, then SIGKILL) or killed outright."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from harness.config import with_ports
from harness.ports import free_ports
from harness.waits import PROCESS_EXIT_S, PROCESS_START_S

REPO = Path(__file__).resolve().parents[1]
PROXY_ARGV = (sys.executable, "-m", "proxy", "serve")


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


async def spawn(
    argv: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
    append: bool = True,
) -> asyncio.subprocess.Process:
    """Start ``argv`` in ``cwd`` with its output to ``log`` (appended to, or truncated)."""
    mode = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(log, mode, 0o644)
    try:
        return await asyncio.create_subprocess_exec(
            *argv, env=None if env is None else dict(env), cwd=cwd, stdout=fd, stderr=fd
        )
    finally:
        os.close(fd)


class Exited(Exception):
    """The process exited before it answered."""

    def __init__(self, code: int, log: Path | None) -> None:
        super().__init__(f"exited with {code}" + (f"; see {log}" if log else ""))
        self.code = code
        self.log = log


async def wait_answering(
    process: asyncio.subprocess.Process,
    url: str,
    log: Path | None = None,
    within: float = PROCESS_START_S,
) -> None:
    """Wait until GET ``url`` answers 200; raise ``Exited`` (naming ``log``, where its output
    went) if ``process`` exits first."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(within):
        while True:
            if process.returncode is not None:
                raise Exited(process.returncode, log)
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)


async def wait_exit(process: asyncio.subprocess.Process, within: float) -> int | None:
    """The exit code of ``process`` once it exits, or ``None`` if it runs on ``within`` s."""
    try:
        async with asyncio.timeout(within):
            return await process.wait()
    except TimeoutError:
        return None


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if it does not exit within ``PROCESS_EXIT_S``."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    if await wait_exit(process, PROCESS_EXIT_S) is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await wait_exit(process, PROCESS_EXIT_S)


async def kill(process: asyncio.subprocess.Process) -> None:
    """kill -9 and wait for the exit."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await wait_exit(process, PROCESS_EXIT_S)


@dataclass
class ProxyProcess:
    """A running ``modellix-proxy serve``."""

    process: asyncio.subprocess.Process
    port: int
    admin_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` and wait for the exit."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
        async with asyncio.timeout(PROCESS_EXIT_S):
            await self.process.wait()

    async def kill_group(self) -> None:
        """kill -9 of the process and its workers at once, as a container runtime does."""
        for pid in child_pids(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await self.kill(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        await stop(self.process)


class PortTaken(Exception):
    """The proxy exited at start-up because its port was taken."""


async def start_proxy(env: Mapping[str, str], log: Path) -> ProxyProcess:
    """Start ``modellix-proxy serve`` with ``env`` (``config.proxy_env``) on free ports and
    wait until it answers ``/readyz``.

    A port chosen free can be taken by another process before the proxy binds it;
    such a start is retried on new ports.
    """
    for _ in range(3):
        try:
            return await _start_once(env, log, free_ports(2))
        except PortTaken:
            continue
    raise AssertionError(f"could not start the proxy on free ports; see {log}")


async def start_proxy_on(
    env: Mapping[str, str], log: Path, port: int, admin_port: int
) -> ProxyProcess:
    """Start ``modellix-proxy serve`` on these ports; wait until it answers ``/readyz``."""
    try:
        return await _start_once(env, log, [port, admin_port])
    except PortTaken:
        raise AssertionError(f"port {port} or {admin_port} stayed taken; see {log}") from None


async def _start_once(env: Mapping[str, str], log: Path, ports: Sequence[int]) -> ProxyProcess:
    port, admin_port = ports
    process = await spawn(PROXY_ARGV, log, env=with_ports(env, port, admin_port))
    proc = ProxyProcess(process, port, admin_port, log)
    try:
        await wait_answering(process, f"{proc.url}/readyz", log)
    except Exited as exited:
        if _port_taken(log):
            raise PortTaken from None
        raise AssertionError(f"proxy {exited}") from None
    return proc


@dataclass(frozen=True)
class Completed:
    """What a command that ran to its end printed, and how it exited."""

    code: int
    out: str
    err: str


async def run_proxy(
    *args: str, env: Mapping[str, str], within: float = PROCESS_START_S
) -> Completed:
    """Run ``modellix-proxy <args>`` (a CLI command: report, check-config, a ``serve`` meant
    to fail) to its end; killed if it runs past ``within`` seconds."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxy",
        *args,
        env=dict(env),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(within):
            out, err = await process.communicate()
    finally:
        await kill(process)
    assert process.returncode is not None
    return Completed(process.returncode, out.decode(), err.decode())


def _port_taken(log: Path) -> bool:
    return "address already in use" in log.read_text(errors="replace").lower()


async def start_expecting_exit(
    env: Mapping[str, str], log: Path, within: float = PROCESS_START_S
) -> int | None:
    """Start ``modellix-proxy serve`` that should exit; its exit code, or ``None`` if it ran on
    for ``within`` s (it is then killed)."""
    process = await spawn(PROXY_ARGV, log, env=with_ports(env, *free_ports(2)), append=False)
    code = await wait_exit(process, within)
    if code is None:
        await kill(process)
    return code
