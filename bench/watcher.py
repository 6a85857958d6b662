"""The watcher at scale: 10,000 jobs in flight that nobody polls, and submits beside them.

Run: ``python -m bench.run --scenario watcher`` (or ``python -m bench.watcher``), about two
minutes. Options: ``--jobs 10000``, ``--seconds 60`` (the due-lag window),
``--submit-rate 100``, ``--submit-seconds 20``, ``--no-pin``, ``--output PATH``.

Set-up (not measured):

1. The benchmark upstream (``bench.upstream``, the simulator's fast preset, unlimited, tasks
   pending for an hour) creates ``--jobs`` tasks in one call (``/_sim/bench/bulk``).
2. The proxy's SQLite ledger gets one open job per task, **inserted directly** (one
   transaction, just before the proxy starts) rather than by 10,000 submits through the proxy,
   which would take about a minute: the rows are those a submit writes. Their history is
   made up as if they had been submitted evenly over the last five minutes (about 33/s)
   and followed by a watcher since: each row's ``watcher_attempts`` and ``next_poll_at``
   come from walking the reference cadence (``proxy.jobs.schedule``: first check 15 s,
   then 5 s doubling to 30 s, +-20 % jitter) from its submit time. So the polls due per
   second are those of a steady flow, not of 10,000 jobs falling due at once.

Measured, with the proxy pinned to CPU 1 and the upstream and this client to CPU 0:

- **watcher off**: the proxy with ``watcher.enabled: false`` on a ledger made the same way;
  open-loop submits at ``--submit-rate`` for ``--submit-seconds`` after a 2 s warm-up (each
  due at *start + i / rate*, latency counted from then): p50, p99, max. It runs once before
  and once after the watcher-on part (the machine is shared: two readings of the floor).
- **watcher on**, default watcher settings and ``upstream.api_key`` set (the watcher's
  key): after a 5 s warm-up, ``--seconds`` of nothing but the watcher (due-lag p50/p99
  from ``modellix_proxy_watcher_due_lag_seconds``, the share of polls later than 5 s,
  which is exact because 5 s is a bucket edge, polls/s from
  ``modellix_proxy_job_polls_total{source="watcher"}``, the largest ``watcher_lag``
  gauge seen and the proxy's CPU), then the same submits as above with the watcher on
  (and the due-lag meanwhile).

Done when (issue 13): due-lag p99 < 5 s with 10,000 jobs in flight, and submit p99 at
100/s with the watcher on within 2x of the watcher-off figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector
from prometheus_client.parser import text_string_to_metric_families

from bench.common import AUTH, RESULTS, SUBMIT_BODY, SUBMIT_PATH, http, log, proxy_env
from bench.report import machine as machine_of_report
from bench.upstream import BULK_SLUG
from harness.config import clean_environ
from harness.ports import free_port
from harness.services import Service, cpu_seconds, proxy_command, service
from proxy.jobs.schedule import Cadence, first_poll_at, next_poll_delay
from proxy.stores import open_store

SPREAD_SECONDS = 300.0
"""The made-up jobs were submitted evenly over this many seconds before the run."""
WARMUP_SECONDS = 5.0
STARTUP_SECONDS = 2.0
SUBMIT_WARMUP_SECONDS = 2.0
"""About how long the proxy takes to start: the made-up schedules begin this far ahead."""
LAG_LIMIT = 5.0
DUE_LAG = "modellix_proxy_watcher_due_lag_seconds"
POLLS = "modellix_proxy_job_polls_total"

INSERT = """
INSERT INTO jobs (task_id, caller, pinned_slug, alias, status, last_seen_status,
    submitted_at, submitted_by, history, estimated_cost_micros, price_table_version,
    input_hash, correlation_id, request_id, next_poll_at, watcher_attempts, stale)
VALUES (?, 'fp:bench', ?, ?, 'pending', 'pending', ?, 'bench-setup', ?, ?, 'bench',
    'sha256:bench', ?, ?, ?, ?, ?)"""


# --- set-up ----------------------------------------------------------------------------------


def schedule(
    submitted_at: float, now: float, cadence: Cadence, rng: random.Random
) -> tuple[float, int]:
    """(next_poll_at, watcher_attempts) of a job submitted then and watched since."""
    at = first_poll_at(submitted_at, cadence, rng.random())
    attempts = 0
    while at < now:
        attempts += 1
        at += next_poll_delay(attempts, cadence, rng.random())
    return at, attempts


def build_ledger(path: Path, task_ids: Sequence[str], now: float, seed: int = 7) -> float:
    """Migrate a SQLite ledger and insert one open job per task; the expected polls/s."""

    async def migrate() -> None:
        store = await open_store(f"sqlite:///{path}")
        await store.close()

    asyncio.run(migrate())
    cadence = Cadence()
    rng = random.Random(seed)
    rows = []
    rate = 0.0
    for i, task_id in enumerate(task_ids):
        submitted = now - SPREAD_SECONDS * (i + 0.5) / len(task_ids)
        next_at, attempts = schedule(submitted, now, cadence, rng)
        nominal = min(cadence.cap, cadence.base * 2 ** max(0, attempts - 1))
        rate += 1 / (cadence.first_check if attempts == 0 else nominal)
        history = json.dumps([["pending", submitted, "submit"]])
        rows.append(
            (task_id, BULK_SLUG, BULK_SLUG, submitted, history, 324_000, f"bench-{i}",
             f"bench-req-{i}", next_at, attempts, attempts >= cadence.stale_after)
        )  # fmt: skip
    with contextlib.closing(sqlite3.connect(path)) as conn:
        with conn:
            conn.executemany(INSERT, rows)
        # Into the database file now: else the proxy's first checkpoint copies these
        # megabytes mid-measurement, a stall that is the set-up's, not the proxy's.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return rate


# --- measuring -------------------------------------------------------------------------------


def scrape(admin: str) -> dict[str, Any]:
    """The watcher's figures from ``/metrics``: polls, due-lag buckets, lag and backlog."""
    status, text = http("GET", admin + "/metrics")
    if status != 200 or not isinstance(text, str):
        raise RuntimeError(f"/metrics answered {status}")
    out: dict[str, Any] = {"buckets": {}, "polls": 0.0, "lag": 0.0, "backlog": 0.0}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == f"{DUE_LAG}_bucket":
                out["buckets"][float(s.labels["le"])] = s.value
            elif s.name == POLLS and s.labels.get("source") == "watcher":
                out["polls"] = s.value
            elif s.name == "modellix_proxy_watcher_lag_seconds":
                out["lag"] = s.value
            elif s.name == "modellix_proxy_watcher_backlog_jobs":
                out["backlog"] = s.value
    return out


def quantile(q: float, buckets: Mapping[float, float]) -> float:
    """``histogram_quantile`` over cumulative bucket counts (linear within a bucket)."""
    edges = sorted(buckets)
    total = buckets.get(math.inf, 0.0)
    if total <= 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= rank:
            if math.isinf(edge):
                return lower
            return lower + (edge - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = edge, count
    return lower


def lag_figures(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    delta = {le: after["buckets"][le] - before["buckets"].get(le, 0.0) for le in after["buckets"]}
    polls = delta.get(math.inf, 0.0)
    within = delta.get(LAG_LIMIT, 0.0)
    return {
        "polls": int(polls),
        "due_lag_p50_s": round(quantile(0.5, delta), 3),
        "due_lag_p99_s": round(quantile(0.99, delta), 3),
        "share_later_than_5s": round(1 - within / polls, 5) if polls else None,
    }


async def submit_loop(base: str, rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop submits: request ``i`` is due at ``start + i / rate``, timed from then."""
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    failed = 0
    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    connector = TCPConnector(limit=256)
    async with ClientSession(base, connector=connector, timeout=ClientTimeout(total=30)) as http_:

        async def one(due: float) -> None:
            nonlocal failed
            try:
                async with http_.post(SUBMIT_PATH, data=SUBMIT_BODY, headers=headers) as answer:
                    await answer.read()
                    statuses[str(answer.status)] = statuses.get(str(answer.status), 0) + 1
            except (ClientError, TimeoutError):
                failed += 1
                return
            latencies.append(time.perf_counter() - due)

        start = time.perf_counter() + 0.05
        async with asyncio.TaskGroup() as group:
            for i in range(total):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                group.create_task(one(due))
    latencies.sort()

    def pick(q: float) -> float:
        if not latencies:
            return float("nan")
        index = min(len(latencies) - 1, max(0, math.ceil(q * len(latencies)) - 1))
        return round(1000 * latencies[index], 2)

    return {
        "rate": rate,
        "seconds": seconds,
        "completed": len(latencies),
        "failed": failed,
        "statuses": statuses,
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "max_ms": pick(1.0),
    }


def submits(base: str, rate: float, seconds: float, peer: Service) -> dict[str, Any]:
    """A discarded warm-up (code paths, connections, caches), then the measured run."""
    asyncio.run(submit_loop(base, rate, SUBMIT_WARMUP_SECONDS))
    cpu_before, started = cpu_seconds(peer.process.pid), time.monotonic()
    result = asyncio.run(submit_loop(base, rate, seconds))
    elapsed = time.monotonic() - started
    result["proxy_cpu_percent"] = round(
        100 * (cpu_seconds(peer.process.pid) - cpu_before) / elapsed, 1
    )
    log(
        f"  submits: {result['completed']} done, p50 {result['p50_ms']} ms, p99 "
        f"{result['p99_ms']} ms, max {result['max_ms']} ms, statuses {result['statuses']}, "
        f"proxy CPU {result['proxy_cpu_percent']} %"
    )
    return result


def watch(admin: str, seconds: float, peer: Service) -> dict[str, Any]:
    """Sample ``/metrics`` every second for ``seconds``: rate, due-lag, the largest lag gauge."""
    first = scrape(admin)
    cpu_before, started = cpu_seconds(peer.process.pid), time.monotonic()
    worst_lag, worst_backlog = first["lag"], first["backlog"]
    last = first
    while time.monotonic() - started < seconds:
        time.sleep(1.0)
        last = scrape(admin)
        worst_lag, worst_backlog = max(worst_lag, last["lag"]), max(worst_backlog, last["backlog"])
    elapsed = time.monotonic() - started
    figures = lag_figures(first, last)
    figures.update(
        seconds=round(elapsed, 1),
        polls_per_second=round((last["polls"] - first["polls"]) / elapsed, 1),
        max_lag_gauge_s=round(worst_lag, 2),
        max_backlog_gauge=int(worst_backlog),
        proxy_cpu_percent=round(100 * (cpu_seconds(peer.process.pid) - cpu_before) / elapsed, 1),
    )
    log(
        f"  watcher: {figures['polls_per_second']} polls/s, due-lag p50 "
        f"{figures['due_lag_p50_s']} s, p99 {figures['due_lag_p99_s']} s, later than 5 s "
        f"{figures['share_later_than_5s']}, max lag gauge {figures['max_lag_gauge_s']} s, "
        f"proxy CPU {figures['proxy_cpu_percent']} %"
    )
    return figures


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run --scenario watcher",
        description=(__doc__ or "").splitlines()[0],
    )
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in flight")
    parser.add_argument("--seconds", type=float, default=60.0, help="due-lag window")
    parser.add_argument("--submit-rate", type=float, default=100.0, help="submits per second")
    parser.add_argument("--submit-seconds", type=float, default=20.0, help="per submit run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="a proxy setting for both proxies, e.g. watcher.max_polls_per_second=300",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "watcher.json")
    return parser.parse_args(argv)


def machine() -> dict[str, Any]:
    """``bench.report.machine`` and the load average at the start."""
    return machine_of_report() | {"load_average": [round(x, 2) for x in os.getloadavg()]}


def overrides(settings: Sequence[str]) -> dict[str, str]:
    """``--set watcher.batch_size=100`` as ``MODELLIX_PROXY_WATCHER__BATCH_SIZE=100``."""
    env = {}
    for item in settings:
        path, _, value = item.partition("=")
        env["MODELLIX_PROXY_" + path.strip().upper().replace(".", "__")] = value.strip()
    return env


@contextlib.contextmanager
def pinned_to(cpus: set[int] | None) -> Iterator[None]:
    """Run this process (the load generator) on ``cpus`` meanwhile."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    pinned = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    load_cpus, peer_cpus = ("0", "1") if pinned else (None, None)
    ports = {n: free_port() for n in ("upstream", "off", "on", "admin")}
    base = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    clean_env = clean_environ("MODELLIX_")
    report: dict[str, Any] = {"machine": machine(), "settings": vars(args) | {"pinned": pinned}}
    report["settings"]["output"] = str(args.output)
    with (
        tempfile.TemporaryDirectory(prefix="modellix-bench-watcher-") as tmp,
        contextlib.ExitStack() as stack,
        pinned_to({0} if pinned else None),
    ):
        workdir = Path(tmp)
        upstream = stack.enter_context(
            service(
                "upstream",
                [sys.executable, "-m", "bench.upstream", "--port", str(ports["upstream"]),
                 "--pending-seconds", "3600"],
                base_url=base["upstream"], ready_path="/_sim/state", workdir=workdir,
                env=clean_env, cpus=load_cpus,
            )
        )  # fmt: skip
        log(f"creating {args.jobs} tasks on the upstream and their jobs in the ledger")
        status, doc = http("POST", f"{upstream.base_url}/_sim/bench/bulk?count={args.jobs}")
        if status != 200 or not isinstance(doc, dict):
            raise RuntimeError(f"bulk create answered {status}: {doc}")
        task_ids = doc["task_ids"]
        build_ledger(workdir / "off.db", task_ids, time.time())

        # The watcher-off proxy stays up (idle) while the other runs: measured before and after.
        off_env = proxy_env(ports["off"], upstream.base_url, f"sqlite:///{workdir}/off.db")
        off_env.update(overrides(args.set))
        off = stack.enter_context(
            service("proxy-off", proxy_command(), base_url=base["off"], ready_path="/healthz",
                    workdir=workdir, env=off_env, cpus=peer_cpus)
        )  # fmt: skip
        log(f"watcher off: {args.submit_rate:g} submits/s for {args.submit_seconds:g} s")
        offs = [submits(base["off"], args.submit_rate, args.submit_seconds, off)]

        # Built now, so that the jobs fall due from the proxy's start on, as in a steady flow.
        expected = build_ledger(workdir / "on.db", task_ids, time.time() + STARTUP_SECONDS)
        report["expected_polls_per_second"] = round(expected, 1)
        log(f"  the cadence asks for about {expected:.0f} polls/s at the start")
        on_env = proxy_env(ports["on"], upstream.base_url, f"sqlite:///{workdir}/on.db")
        on_env.update(
            MODELLIX_PROXY_WATCHER__ENABLED="true",
            MODELLIX_PROXY_UPSTREAM__API_KEY=AUTH.removeprefix("Bearer "),
            MODELLIX_PROXY_ADMIN__ENABLED="true",
            MODELLIX_PROXY_ADMIN__HOST="127.0.0.1",
            MODELLIX_PROXY_ADMIN__PORT=str(ports["admin"]),
        )
        on_env.update(overrides(args.set))
        with service("proxy-on", proxy_command(), base_url=base["on"], ready_path="/healthz",
                     workdir=workdir, env=on_env, cpus=peer_cpus) as on:  # fmt: skip
            time.sleep(WARMUP_SECONDS)
            log(f"watcher on, {args.jobs} jobs in flight: {args.seconds:g} s, no other traffic")
            report["watcher_alone"] = watch(base["admin"], args.seconds, on)
            log(f"watcher on: {args.submit_rate:g} submits/s for {args.submit_seconds:g} s")
            before = scrape(base["admin"])
            report["submits_watcher_on"] = submits(
                base["on"], args.submit_rate, args.submit_seconds, on
            )
            report["watcher_during_submits"] = lag_figures(before, scrape(base["admin"]))
            report["proxy_log_tail"] = on.log_tail(5)
        log(f"watcher off again: {args.submit_rate:g} submits/s for {args.submit_seconds:g} s")
        offs.append(submits(base["off"], args.submit_rate, args.submit_seconds, off))
        report["submits_watcher_off"] = offs
    off_p99 = sum(o["p99_ms"] for o in offs) / len(offs)
    on_p99 = report["submits_watcher_on"]["p99_ms"]
    report["submit_p99_ratio_on_over_off"] = round(on_p99 / off_p99, 2) if off_p99 else None
    report["done_when"] = {
        "due_lag_p99_under_5s": report["watcher_alone"]["due_lag_p99_s"] < LAG_LIMIT,
        "submit_p99_within_2x_of_off_mean": bool(off_p99) and on_p99 <= 2 * off_p99,
    }
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    report["finished_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(summary(report))
    log(f"wrote {args.output} in {report['wall_seconds']} s")
    return 0


def summary(report: Mapping[str, Any]) -> str:
    alone, during = report["watcher_alone"], report["watcher_during_submits"]
    offs, on = report["submits_watcher_off"], report["submits_watcher_on"]
    off_p50 = " / ".join(str(o["p50_ms"]) for o in offs)
    off_p99 = " / ".join(str(o["p99_ms"]) for o in offs)
    return "\n".join(
        [
            f"| figure ({report['settings']['jobs']:,} jobs in flight) | value |",
            "|---|---|",
            f"| watcher polls/s achieved (cadence asks ~{report['expected_polls_per_second']}) "
            f"| {alone['polls_per_second']} |",
            f"| due-lag p50 / p99 | {alone['due_lag_p50_s']} s / {alone['due_lag_p99_s']} s |",
            f"| polls later than 5 s | {alone['share_later_than_5s']} |",
            f"| largest `watcher_lag` gauge seen | {alone['max_lag_gauge_s']} s |",
            f"| proxy CPU, watcher alone | {alone['proxy_cpu_percent']} % |",
            f"| due-lag p99 while submitting | {during['due_lag_p99_s']} s |",
            f"| submit p50 at {on['rate']:g}/s: watcher off (before / after) - on | "
            f"{off_p50} ms - {on['p50_ms']} ms |",
            f"| submit p99 at {on['rate']:g}/s: watcher off (before / after) - on | "
            f"{off_p99} ms - {on['p99_ms']} ms |",
            f"| submit p99 on / mean off | {report['submit_p99_ratio_on_over_off']}x |",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
