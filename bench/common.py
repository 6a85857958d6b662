"""What the benchmark scenarios share: the proxy's environment, the set-up requests made
before measuring (submits, pins, polls through urllib: never measured), PostgreSQL databases
for the PostgreSQL peer, and the constants of the benchmark traffic. Processes, ports and
CPU time come from the ``harness`` package.

``bench.run`` and each scenario module (``bench.watcher``, ``bench.workers``,
``bench.ledger_reads``, ``bench.logcost``, ``bench.sweep``) import this; it imports none of
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg

from harness import postgres
from harness.config import clean_environ

RESULTS = Path(__file__).resolve().parent / "results"
AUTH = "Bearer bench-key"
DISTINCT_IDS = 1000
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SUBMIT_PATH = "/api/v1/minimax/hailuo-02-t2v"
SUBMIT_BODY = json.dumps(
    {"prompt": "a red fox running through snow", "duration": 6, "resolution": "768P"}
)
PG_CONNECT_SECONDS = 3.0


def machine_cpu_ticks() -> list[int]:
    """The whole machine's CPU time so far, by kind (``/proc/stat``'s ``cpu`` line, clock
    ticks): user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice."""
    line = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0]
    return [int(x) for x in line.split()[1:11]]


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------------


def proxy_env(
    port: int, upstream: str, store_url: str, schemas: str | None = None
) -> dict[str, str]:
    """``schemas``: the benchmark upstream's schema origin (none: a closed port, so the
    proxy validates as with the schema origin down and never asks the real one)."""
    env = clean_environ()
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

    async def create() -> str:
        async with asyncio.timeout(PG_CONNECT_SECONDS):
            return await postgres.create_database(name, PG_ADMIN_URL)

    try:
        return asyncio.run(create())
    except (OSError, asyncpg.PostgresError) as exc:
        log(f"PostgreSQL not usable ({exc}); skipping the PostgreSQL peer")
        return None


def drop_pg_database(name: str) -> None:
    async def drop() -> None:
        async with asyncio.timeout(PG_CONNECT_SECONDS):
            await postgres.drop_database(name, PG_ADMIN_URL)

    with contextlib.suppress(OSError, asyncpg.PostgresError):
        asyncio.run(drop())
