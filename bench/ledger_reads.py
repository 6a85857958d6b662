"""Finance reads of a month of ledger against a live proxy, with ``/healthz`` probed beside them.

Run: ``python -m bench.run --scenario ledger-reads`` (or ``python -m bench.ledger_reads``).
Options: ``--jobs 300000``, ``--engines sqlite,postgres``, ``--output PATH``.

For each engine: ``bench.ledger`` seeds ``--jobs`` terminal jobs submitted over the last 30
days (bulk insert, not measured); ``modellix-proxy serve`` starts on that store with the admin
API on; once it has read its ledger gauges the first time (``/metrics``: that round sums the
whole ledger before this month, which it then does again only hourly), one after the other,
``GET /admin/report?format=json``, ``?format=csv`` and
``GET /admin/export/focus?format=csv`` (read to the end as the chunks arrive). Meanwhile a
prober sends ``GET /healthz`` to the client port every 50 ms (one at a time) and the proxy's
RSS is sampled every 100 ms. Reported: the worst ``/healthz`` latency during each read, each
read's time and the proxy's CPU time meanwhile (all its threads: on a shared machine the
steadier figure), the export's rows per second and CPU per row, and the RSS growth over the
start's.

Done when: ``/healthz`` worst < 100 ms, the report < 1 s, the export >= 50,000 rows/s with
RSS growth < 50 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import RESULTS, create_pg_database, drop_pg_database, log, proxy_env
from bench.ledger import seed
from bench.report import machine
from harness.ports import free_port
from harness.services import cpu_seconds, proxy_command, service

TOKEN = "bench-admin-token"  # noqa: S105 (a benchmark proxy's admin token)
PROBE_SECONDS = 0.05
GAUGE_WAIT_SECONDS = 60.0
REFRESHED = "modellix_proxy_ledger_refresh_timestamp_seconds "
READS = (
    ("report_json", "/admin/report?format=json"),
    ("report_csv", "/admin/report?format=csv"),
    ("focus_csv", "/admin/export/focus?format=csv"),
)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Watch:
    """``/healthz`` every 50 ms and the RSS every 100 ms, until stopped."""

    def __init__(self, base: str, pid: int) -> None:
        self.base, self.pid = base, pid
        self.latencies: list[float] = []
        self.rss: list[float] = []
        self._stop = asyncio.Event()

    async def probe(self, session: aiohttp.ClientSession) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            async with session.get(f"{self.base}/healthz") as resp:
                await resp.read()
            took = time.perf_counter() - started
            self.latencies.append(took)
            await asyncio.sleep(max(0.0, PROBE_SECONDS - took))

    async def memory(self) -> None:
        while not self._stop.is_set():
            self.rss.append(rss_mb(self.pid))
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()


async def read(session: aiohttp.ClientSession, admin: str, path: str) -> tuple[float, int, int]:
    """Seconds, bytes and lines of one read, consumed as it streams."""
    started = time.perf_counter()
    size = lines = 0
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timeout = aiohttp.ClientTimeout(total=600)
    async with session.get(admin + path, headers=headers, timeout=timeout) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{path} answered {resp.status}: {await resp.text()}")
        async for chunk in resp.content.iter_chunked(1 << 16):
            size += len(chunk)
            lines += chunk.count(b"\n")
    return time.perf_counter() - started, size, lines


async def first_gauge_round(session: aiohttp.ClientSession, admin: str) -> float:
    """Seconds until the proxy has read its ledger gauges once (``/metrics``), at most 60:
    the first round sums the whole ledger before this month, once an hour after it."""
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    while time.perf_counter() - started < GAUGE_WAIT_SECONDS:
        async with session.get(f"{admin}/metrics", headers=headers) as resp:
            for line in (await resp.text()).splitlines():
                if line.startswith(REFRESHED) and float(line.split()[-1]) > 0:
                    return time.perf_counter() - started
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no ledger gauge round within {GAUGE_WAIT_SECONDS} s")


async def measure(client: str, admin: str, pid: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rss_ready_mb": round(rss_mb(pid), 1)}
    async with aiohttp.ClientSession() as probes, aiohttp.ClientSession() as reads:
        out["first_gauge_round_seconds"] = round(await first_gauge_round(reads, admin), 2)
        out["rss_start_mb"] = round(rss_mb(pid), 1)
        for name, path in READS:
            watch = Watch(client, pid)
            async with asyncio.TaskGroup() as group:
                group.create_task(watch.probe(probes))
                group.create_task(watch.memory())
                await asyncio.sleep(0.2)
                cpu = cpu_seconds(pid)
                try:
                    seconds, size, lines = await read(reads, admin, path)
                finally:
                    watch.stop()
                cpu = cpu_seconds(pid) - cpu
            figures: dict[str, Any] = {
                "seconds": round(seconds, 3),
                "proxy_cpu_seconds": round(cpu, 2),
                "bytes": size,
                "healthz_worst_ms": round(1000 * max(watch.latencies), 1),
                "healthz_probes": len(watch.latencies),
                "rss_max_mb": round(max(watch.rss), 1),
            }
            if name == "focus_csv":
                figures["rows"] = lines - 1
                figures["rows_per_second"] = round((lines - 1) / seconds)
                figures["proxy_cpu_us_per_row"] = round(1e6 * cpu / max(1, lines - 1), 1)
            out[name] = figures
            log(f"  {name}: {figures}")
    out["rss_growth_mb"] = round(
        max(out[name]["rss_max_mb"] for name, _ in READS) - out["rss_start_mb"], 1
    )
    return out


def run_engine(engine: str, jobs: int, workdir: Path, cpus: str | None) -> dict[str, Any] | None:
    pg_name = f"modellix_bench_ledger_{os.getpid()}"
    if engine == "postgres":
        url = create_pg_database(pg_name)
        if url is None:
            log("PostgreSQL does not answer: skipped")
            return None
    else:
        url = f"sqlite:///{workdir}/ledger.db"
    try:
        log(f"{engine}: seeding {jobs} terminal jobs over 30 days")
        took = asyncio.run(seed(url, jobs))
        log(f"  seeded in {took:.1f} s")
        port, admin_port = free_port(), free_port()
        env = proxy_env(port, "http://127.0.0.1:9", url)  # no upstream call is made
        env.update(
            MODELLIX_PROXY_ADMIN__ENABLED="true",
            MODELLIX_PROXY_ADMIN__HOST="127.0.0.1",
            MODELLIX_PROXY_ADMIN__PORT=str(admin_port),
            MODELLIX_PROXY_ADMIN__TOKEN=TOKEN,
            MODELLIX_PROXY_WORKERS="1",
        )
        client = f"http://127.0.0.1:{port}"
        with service(
            f"proxy-{engine}", proxy_command(), base_url=client, ready_path="/healthz",
            workdir=workdir, env=env, cpus=cpus,
        ) as proxy:  # fmt: skip
            figures = asyncio.run(
                measure(client, f"http://127.0.0.1:{admin_port}", proxy.process.pid)
            )
        return {"engine": engine, "jobs": jobs, "seed_seconds": round(took, 1), **figures}
    finally:
        if engine == "postgres":
            drop_pg_database(pg_name)


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| engine | read | time | proxy CPU | /healthz worst | rows/s | RSS max |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for name, _ in READS:
            f = r[name]
            rate = f"{f['rows_per_second']:,}" if "rows_per_second" in f else ""
            lines.append(
                f"| {r['engine']} | {name} | {f['seconds']} s | {f['proxy_cpu_seconds']} s"
                f" | {f['healthz_worst_ms']} ms"
                f" | {rate} | {f['rss_max_mb']} MB |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=300_000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--output", type=Path, default=RESULTS / "ledger-reads.json")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args(argv)
    pinned = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    results = []
    with tempfile.TemporaryDirectory(prefix="modellix-bench-ledger-") as tmp:
        for engine in (e.strip() for e in args.engines.split(",") if e.strip()):
            with contextlib.suppress(KeyboardInterrupt):
                got = run_engine(engine, args.jobs, Path(tmp), "1" if pinned else None)
            if got is not None:
                results.append(got)
    doc = {"machine": machine(), "load_average": os.getloadavg(), "results": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2))
    print(markdown_table(results))
    print(f"machine: {doc['machine']}; load average {doc['load_average']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
