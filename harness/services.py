"""Real processes for synchronous callers (the benchmarks): a service started from an argv,
optionally pinned to CPUs, waited for until a path answers, and stopped on the way out."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.processes import REPO
from harness.waits import PROCESS_EXIT_S

READY_SECONDS = 20.0
"""How long a benchmark service may take to answer (an idle machine's start, with margin)."""


@dataclass
class Service:
    """A running service: its process, its log and the origin it answers on."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def service(
    name: str,
    argv: Sequence[str],
    *,
    base_url: str,
    ready_path: str,
    workdir: Path,
    env: Mapping[str, str],
    cpus: str | None,
    ready_within: float = READY_SECONDS,
) -> Iterator[Service]:
    """Start ``argv`` (on ``cpus`` with taskset, if given), its output to
    ``workdir/<name>.log``; wait until ``ready_path`` answers 200 (at most ``ready_within``
    seconds); stop it on the way out."""
    log_path = workdir / f"{name}.log"
    command = ["taskset", "-c", cpus, *argv] if cpus else list(argv)
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=REPO, env=dict(env), stdout=sink, stderr=subprocess.STDOUT
        )
    running = Service(name, process, log_path, base_url)
    try:
        wait_ready(running, ready_path, ready_within)
        yield running
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not exit within ``PROCESS_EXIT_S``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=PROCESS_EXIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=PROCESS_EXIT_S)


def wait_ready(svc: Service, path: str, within: float = READY_SECONDS) -> None:
    """Wait until GET ``path`` on ``svc`` answers 200; raise with its log if it exits first
    or does not answer ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        if svc.process.poll() is not None:
            raise RuntimeError(
                f"{svc.name} exited with {svc.process.returncode}:\n{svc.log_tail()}"
            )
        if _answers(svc.base_url + path):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{svc.name} not ready after {within}s:\n{svc.log_tail()}")
        time.sleep(0.1)


def _answers(url: str) -> bool:
    request = urllib.request.Request(url, headers={"Connection": "close"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=1.0) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except OSError:  # refused, reset, timed out, or an HTTP error status
        return False


def proxy_command() -> list[str]:
    """``modellix-proxy serve`` of this environment (the console script, else ``-m``)."""
    script = Path(sys.executable).parent / "modellix-proxy"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "proxy.cli", "serve"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) so far, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
