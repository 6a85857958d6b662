"""What the benchmarks share: starting and stopping the processes they measure (the proxy,
the benchmark upstream, PostgreSQL databases), CPU time from /proc, and the set-up requests
made before measuring (submits, pins, polls through urllib: never measured).

``bench.run`` and each scenario module (``bench.watcher``, ``bench.workers``,
``bench.ledger_reads``, ``bench.logcost``, ``bench.sweep``) import this; it imports none of
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
AUTH = "Bearer bench-key"
DISTINCT_IDS = 1000
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SUBMIT_PATH = "/api/v1/minimax/hailuo-02-t2v"
SUBMIT_BODY = json.dumps(
    {"prompt": "a red fox running through snow", "duration": 6, "resolution": "768P"}
)
READY_SECONDS = 20.0


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
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
) -> Iterator[Service]:
    """Start ``argv``, wait until ``ready_path`` answers, stop it on the way out."""
    log_path = workdir / f"{name}.log"
    command = ["taskset", "-c", cpus, *argv] if cpus else list(argv)
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=dict(env), stdout=sink, stderr=subprocess.STDOUT
        )
    running = Service(name, process, log_path, base_url)
    try:
        wait_ready(running, ready_path)
        yield running
    finally:
        stop(process)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) so far, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def wait_ready(svc: Service, path: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if svc.process.poll() is not None:
            raise RuntimeError(
                f"{svc.name} exited with {svc.process.returncode}:\n{svc.log_tail()}"
            )
        try:
            status, _ = http("GET", svc.base_url + path, timeout=1.0)
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{svc.name} not ready after {READY_SECONDS}s:\n{svc.log_tail()}")
        time.sleep(0.1)


def proxy_command() -> list[str]:
    script = Path(sys.executable).parent / "modellix-proxy"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "proxy.cli", "serve"]


def proxy_env(
    port: int, upstream: str, store_url: str, schemas: str | None = None
) -> dict[str, str]:
    """``schemas``: the benchmark upstream's schema origin (none: a closed port, so the
    proxy validates as with the schema origin down and never asks the real one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELLIX_PROXY_")}
    env.update(
        MODELLIX_PROXY_LISTEN__HOST="127.0.0.1",
        MODELLIX_PROXY_LISTEN__PORT=str(port),
        MODELLIX_PROXY_UPSTREAM__ORIGIN=upstream,
        MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__ORIGIN=schemas or "http://127.0.0.1:1",
        MODELLIX_PROXY_ADMIN__ENABLED="false",
        MODELLIX_PROXY_STORE__URL=store_url,
        MODELLIX_PROXY_WATCHER__ENABLED="false",
        MODELLIX_PROXY_LOGGING__LEVEL="warning",
        # Quoted: the overrides are YAML scalars, and a bare `off` is YAML 1.1 for false.
        MODELLIX_PROXY_MODELS__PREFLIGHT__MODE="'off'",
    )
    return env


# --- HTTP for set-up -------------------------------------------------------------------------


def http(
    method: str, url: str, body: str | None = None, *, timeout: float = 10.0
) -> tuple[int, Any]:
    headers = {"Authorization": AUTH, "Connection": "close"}
    data = None
    if body is not None:
        data = body.encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def submit(base: str, body: str = SUBMIT_BODY) -> str:
    status, doc = http("POST", base + SUBMIT_PATH, body)
    if status != 200 or not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        raise RuntimeError(f"submit to {base} answered {status}: {doc}")
    return str(doc["data"]["task_id"])


def pin(upstream: str, task_id: str, state: str) -> None:
    status, doc = http("POST", f"{upstream}/_sim/bench/pin/{task_id}?state={state}")
    if status != 200:
        raise RuntimeError(f"pinning {task_id} {state} answered {status}: {doc}")


def task_status(base: str, task_id: str) -> str:
    status, doc = http("GET", f"{base}/api/v1/tasks/{task_id}")
    if status != 200 or not isinstance(doc, dict):
        raise RuntimeError(f"poll of {task_id} at {base} answered {status}: {doc}")
    return str(doc.get("data", {}).get("status"))


def upstream_counts(upstream: str) -> dict[str, int]:
    _, doc = http("GET", f"{upstream}/_sim/state")
    counters = doc.get("counters", doc) if isinstance(doc, dict) else {}
    requests = counters.get("requests", {}) if isinstance(counters, dict) else {}
    return {str(k): int(v) for k, v in requests.items()} if isinstance(requests, dict) else {}


# --- set-up ----------------------------------------------------------------------------------


def many(count: int, make: Callable[[int], str]) -> list[str]:
    """``make(i)`` for ``i < count``, eight at a time (set-up only: not measured)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(make, range(count)))


def write_paths(workdir: Path, name: str, task_ids: Sequence[str]) -> Path:
    path = workdir / f"{name}.paths"
    path.write_text("".join(f"/api/v1/tasks/{t}\n" for t in task_ids), encoding="utf-8")
    return path


def create_pg_database(name: str) -> str | None:
    """A fresh PostgreSQL database for the PostgreSQL peer; None when PostgreSQL is absent."""
    try:
        import asyncpg
    except ImportError:
        return None

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    try:
        asyncio.run(create())
    except (OSError, asyncpg.PostgresError) as exc:
        log(f"PostgreSQL not usable ({exc}); skipping the PostgreSQL peer")
        return None
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    with contextlib.suppress(OSError, asyncpg.PostgresError):
        asyncio.run(drop())
