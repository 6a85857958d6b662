"""Proxy overhead on loopback, against the upstream itself and against the framework's floor.

Run: ``python -m bench.run [--seconds 5] [--warmup 1] [--connections 32]`` (``make bench``,
about three minutes). ``python -m bench.run --scenario watcher`` runs the watcher at scale
instead (``bench.watcher``: 10,000 jobs in flight, due-lag and submits beside it), and
``--scenario workers`` runs ``serve --workers 2`` against ``--workers 1`` (``bench.workers``),
and ``--scenario ledger-reads`` finance reads of a month of ledger (``bench.ledger_reads``).

It starts, as subprocesses: the benchmark upstream (``bench.upstream``: the simulator,
unlimited and kept small), a bare aiohttp pass-through in front of it (``bench.bare``: the
framework's floor), ``modellix-proxy serve`` on SQLite (and a second one at the default
``info`` logging level, for the forwarded polls) and, when PostgreSQL answers, a proxy on
PostgreSQL (for the submits). With two or more CPUs each peer is pinned to CPU 1 and the load
generator (wrk, the open-loop client) and the upstream to CPU 0. Every closed-loop scenario
runs ``wrk`` against each peer in turn; polls rotate through 1,000 distinct task ids made
beforehand (coalescing has its own one-id scenario). The open-loop part sends polls on a
fixed schedule and reports achieved rate and added p50/p99 over the bare pass-through.
The figures go to stdout, ``bench/results/latest.json`` and ``bench/results/latest.md``,
with the machine, the load average and the commit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import wrk
from bench.common import (
    AUTH,
    DISTINCT_IDS,
    RESULTS,
    SUBMIT_BODY,
    SUBMIT_PATH,
    create_pg_database,
    drop_pg_database,
    log,
    many,
    pin,
    proxy_env,
    submit,
    task_status,
    upstream_counts,
    write_paths,
)
from bench.report import markdown, ratios, run_header, table
from bench.upstream import KEEP_PROMPT
from harness.config import clean_environ
from harness.ports import free_port
from harness.services import Service, cpu_seconds, proxy_command, service

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("overhead", "watcher", "workers", "ledger-reads")


# --- scenarios -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    proxy_does: str
    method: str
    path: str
    peers: tuple[str, ...]
    body: str = ""
    paths_file: Path | None = None
    fresh_keys: bool = False


def prepare(upstream: str, proxy: str, workdir: Path, pg: bool) -> list[Scenario]:
    """Create and pin the tasks the poll scenarios read; check samples answer as expected."""
    keep = json.dumps(json.loads(SUBMIT_BODY) | {"prompt": KEEP_PROMPT})

    def foreign_done(_: int) -> str:
        task_id = submit(upstream, keep)
        pin(upstream, task_id, "done")
        return task_id

    def own_pending(_: int) -> str:
        task_id = submit(proxy, keep)
        pin(upstream, task_id, "pending")
        return task_id

    log(f"creating {DISTINCT_IDS} foreign and {DISTINCT_IDS} own tasks")
    foreign = many(DISTINCT_IDS, foreign_done)
    own = many(DISTINCT_IDS, own_pending)
    single = submit(upstream, keep)
    pin(upstream, single, "pending")
    done = submit(proxy, keep)
    pin(upstream, done, "done")
    expected = {foreign[0]: "success", own[0]: "pending", single: "pending", done: "success"}
    for task_id, want in expected.items():
        for base in (upstream, proxy):
            got = task_status(base, task_id)
            if got != want:
                raise RuntimeError(f"task {task_id} at {base} is {got!r}, expected {want!r}")
    polls = ("direct", "bare", "proxy")
    submits = ("direct", "bare", "proxy", *(("proxy-pg",) if pg else ()))
    return [
        Scenario(
            "poll-foreign",
            f"GET task, {DISTINCT_IDS} distinct ids, not the proxy's jobs",
            "forwards every poll; the jobs are not in its ledger",
            "GET",
            f"/api/v1/tasks/{foreign[0]}",
            (*polls, "proxy-info"),
            paths_file=write_paths(workdir, "foreign", foreign),
        ),
        Scenario(
            "poll-own",
            f"GET task, {DISTINCT_IDS} distinct ids, the proxy's jobs (pending)",
            "forwards every poll and observes it for its job ledger (no change: memory only)",
            "GET",
            f"/api/v1/tasks/{own[0]}",
            polls,
            paths_file=write_paths(workdir, "own", own),
        ),
        Scenario(
            "poll-coalesced",
            "GET task, one id from every connection (pending, foreign)",
            "merges identical polls in flight into one upstream request",
            "GET",
            f"/api/v1/tasks/{single}",
            polls,
        ),
        Scenario(
            "poll-cached",
            "GET task, one id, the proxy's job (success)",
            "answers from its terminal-task cache; the upstream is not asked",
            "GET",
            f"/api/v1/tasks/{done}",
            ("bare", "proxy"),
        ),
        Scenario(
            "submit",
            "POST minimax/hailuo-02-t2v",
            "validates, prices and forwards the submit, records the job before answering",
            "POST",
            SUBMIT_PATH,
            submits,
            SUBMIT_BODY,
        ),
        Scenario(
            "submit-idem",
            "POST minimax/hailuo-02-t2v, a fresh Idempotency-Key each",
            "as submit, plus claims and settles the idempotency key",
            "POST",
            SUBMIT_PATH,
            submits,
            SUBMIT_BODY,
            fresh_keys=True,
        ),
    ]


@dataclass(frozen=True, slots=True)
class Options:
    seconds: float
    warmup: float
    connections: int
    threads: int
    load_cpus: str | None


def measure(
    scenario: Scenario, base: str, upstream: Service, peer: Service, options: Options
) -> tuple[wrk.WrkResult, dict[str, Any]]:
    """One warm-up and one measured wrk run; also what the upstream saw and CPU spent."""
    request = wrk.Request(
        scenario.method,
        base + scenario.path,
        scenario.body,
        AUTH,
        paths_file=str(scenario.paths_file) if scenario.paths_file else "",
        fresh_keys=scenario.fresh_keys,
    )
    common = {"connections": options.connections, "threads": options.threads}
    if options.warmup > 0:
        wrk.run(request, seconds=options.warmup, cpus=options.load_cpus, **common)
    watched = {upstream.name: upstream, peer.name: peer}
    before = upstream_counts(upstream.base_url)
    cpu_before = {n: cpu_seconds(s.process.pid) for n, s in watched.items()}
    result = wrk.run(request, seconds=options.seconds, cpus=options.load_cpus, **common)
    cpu = {n: cpu_seconds(s.process.pid) - cpu_before[n] for n, s in watched.items()}
    after = upstream_counts(upstream.base_url)
    seen = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    extra: dict[str, Any] = {
        "upstream_requests": {k: v for k, v in seen.items() if v},
        "cpu_percent": {k: round(100 * v / result.seconds, 1) for k, v in cpu.items()},
        "cpu_us_per_request": {
            k: round(1e6 * v / max(1, result.requests), 1) for k, v in cpu.items()
        },
    }
    return result, extra


def open_loop(
    base: str, paths_file: Path, rate: float, seconds: float, cpus: str | None, peer: Service
) -> dict[str, Any]:
    """One open-loop run of polls at ``rate`` per second (``bench.openloop``)."""
    argv = [
        sys.executable, "-m", "bench.openloop", "--base", base, "--paths", str(paths_file),
        "--rate", str(rate), "--seconds", str(seconds), "--auth", AUTH,
    ]  # fmt: skip
    command = ["taskset", "-c", cpus, *argv] if cpus else argv
    cpu_before = cpu_seconds(peer.process.pid)
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"open-loop client failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["cpu_percent"] = round(100 * (cpu_seconds(peer.process.pid) - cpu_before) / elapsed, 1)
    return result


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="overhead",
        help="overhead (this benchmark), watcher (bench.watcher) or workers (bench.workers:"
        " serve --workers 2 against 1); the last two take their own options",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds before each")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--rates",
        default="500,1000",
        help="open-loop poll rates per second, comma-separated ('' to skip)",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin processes to CPUs (taskset)"
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL peer")
    parser.add_argument(
        "--only",
        action="append",
        metavar="SCENARIO",
        help="run only this scenario (repeatable): poll-foreign, poll-own, poll-coalesced, "
        "poll-cached, submit, submit-idem, open-loop",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    return parser.parse_args(argv)


def run_scenario(
    scenario: Scenario,
    bases: Mapping[str, str],
    services: Mapping[str, Service],
    options: Options,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key": scenario.key,
        "title": scenario.title,
        "proxy_does": scenario.proxy_does,
        "method": scenario.method,
        "path": scenario.path,
        "peers": {},
    }
    upstream = services["direct"]
    measured: dict[str, wrk.WrkResult] = {}
    for name in scenario.peers:
        if name not in bases:
            continue
        log(f"{scenario.key}: {name} ({options.warmup:g} s warm-up + {options.seconds:g} s)")
        result, extra = measure(scenario, bases[name], upstream, services[name], options)
        measured[name] = result
        row["peers"][name] = result.as_json() | extra
        if result.non_2xx:
            log(f"  {result.non_2xx} non-2xx {result.statuses}; first: {result.sample_failure}")
        log(
            f"  {result.requests_per_second:.0f} req/s, p50 {result.p50:.2f} ms, "
            f"p99 {result.p99:.2f} ms, CPU % {extra['cpu_percent']}, "
            f"upstream saw {extra['upstream_requests']}"
        )
        if services[name].process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{services[name].log_tail()}")
    row["ratios"] = {
        name: ratios(measured, row["peers"], name) for name in measured if name != "direct"
    }
    return row


def main(argv: Sequence[str] | None = None) -> int:
    picker = argparse.ArgumentParser(add_help=False)
    picker.add_argument("--scenario", choices=SCENARIOS, default="overhead")
    chosen, rest = picker.parse_known_args(argv)
    if chosen.scenario == "watcher":  # its own options: see bench/watcher.py
        from bench import watcher

        return watcher.main(rest)
    if chosen.scenario == "workers":  # its own options: see bench/workers.py
        from bench import workers

        return workers.main(rest)
    if chosen.scenario == "ledger-reads":  # its own options: see bench/ledger_reads.py
        from bench import ledger_reads

        return ledger_reads.main(rest)
    args = parse_args(rest)
    if shutil.which("wrk") is None:
        log("wrk is not installed (apt-get install wrk)")
        return 2
    if args.connections < args.threads:
        log("--connections must be at least --threads")
        return 2
    started = time.monotonic()
    load_before = os.getloadavg()
    pinned = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    load_cpus, peer_cpus = ("0", "1") if pinned else (None, None)
    options = Options(args.seconds, args.warmup, args.connections, args.threads, load_cpus)
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    ports = {name: free_port() for name in ("direct", "bare", "proxy", "proxy-info", "proxy-pg")}
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    upstream_url = bases["direct"]
    schema_port = free_port()
    schema_url = f"http://127.0.0.1:{schema_port}"
    pg_name = f"modellix_bench_{os.getpid()}"
    pg_url = None if args.no_postgres else create_pg_database(pg_name)
    if pg_url is None:
        bases.pop("proxy-pg")
    results: list[dict[str, Any]] = []
    loops: list[dict[str, Any]] = []
    clean_env = clean_environ("MODELLIX_")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="modellix-bench-") as tmp,
            contextlib.ExitStack() as stack,
        ):
            workdir = Path(tmp)

            def start(
                name: str, argv: list[str], ready: str, env: Mapping[str, str], cpus: str | None
            ) -> Service:
                return stack.enter_context(
                    service(
                        name,
                        argv,
                        base_url=bases[name],
                        ready_path=ready,
                        workdir=workdir,
                        env=env,
                        cpus=cpus,
                    )
                )

            services = {
                "direct": start(
                    "direct",
                    [
                        sys.executable,
                        "-m",
                        "bench.upstream",
                        "--port",
                        str(ports["direct"]),
                        "--schema-port",
                        str(schema_port),
                    ],
                    "/_sim/state",
                    clean_env,
                    load_cpus,
                ),
                "bare": start(
                    "bare",
                    [
                        sys.executable,
                        "-m",
                        "bench.bare",
                        "--port",
                        str(ports["bare"]),
                        "--upstream",
                        upstream_url,
                    ],
                    "/_sim/state",
                    clean_env,
                    peer_cpus,
                ),
                "proxy": start(
                    "proxy",
                    proxy_command(),
                    "/healthz",
                    proxy_env(
                        ports["proxy"], upstream_url, f"sqlite:///{workdir}/bench.db", schema_url
                    ),
                    peer_cpus,
                ),
            }
            # The default logging level (info: one JSON access line per request, to a file).
            info_env = proxy_env(
                ports["proxy-info"], upstream_url, f"sqlite:///{workdir}/info.db", schema_url
            )
            info_env["MODELLIX_PROXY_LOGGING__LEVEL"] = "info"
            services["proxy-info"] = start(
                "proxy-info", proxy_command(), "/healthz", info_env, peer_cpus
            )
            if pg_url is not None:
                services["proxy-pg"] = start(
                    "proxy-pg",
                    proxy_command(),
                    "/healthz",
                    proxy_env(ports["proxy-pg"], upstream_url, pg_url, schema_url),
                    peer_cpus,
                )
            scenarios = prepare(upstream_url, bases["proxy"], workdir, pg_url is not None)
            if args.only:
                known = {s.key for s in scenarios} | {"open-loop"}
                if unknown := set(args.only) - known:
                    log(f"unknown scenario(s): {', '.join(sorted(unknown))}")
                    return 2
                scenarios = [s for s in scenarios if s.key in args.only]
                if "open-loop" not in args.only:
                    rates = []
            # Polls, then the open loop, then submits: the tasks submits pile up in the
            # simulator must not slow the upstream under the poll figures.
            for scenario in [s for s in scenarios if s.method == "GET"]:
                results.append(run_scenario(scenario, bases, services, options))
            foreign_paths = workdir / "foreign.paths"
            for rate in rates:
                for name in ("bare", "proxy"):
                    log(f"open loop: {name} at {rate:g} polls/s for {args.seconds:g} s")
                    outcome = open_loop(
                        bases[name], foreign_paths, rate, args.seconds, load_cpus, services[name]
                    )
                    outcome["peer"] = name
                    loops.append(outcome)
                    log(
                        f"  achieved {outcome['achieved_rate']}/s, p50 "
                        f"{outcome['latency_ms']['50']} ms, p99 {outcome['latency_ms']['99']} ms, "
                        f"CPU {outcome['cpu_percent']} %, failed {outcome['failed']}"
                    )
            for scenario in [s for s in scenarios if s.method != "GET"]:
                results.append(run_scenario(scenario, bases, services, options))
            proxy_log = services["proxy"].log_tail(5)
    finally:
        if pg_url is not None:
            drop_pg_database(pg_name)
    report: dict[str, Any] = {
        **run_header(started, load_before),
        "settings": {
            "seconds": args.seconds,
            "warmup": args.warmup,
            "connections": args.connections,
            "threads": args.threads,
            "distinct_ids": DISTINCT_IDS,
            "pinning": (
                "each peer (bare, proxy, proxy-info, proxy-pg) on CPU 1; wrk, the open-loop "
                "client and the upstream on CPU 0; PostgreSQL itself unpinned"
                if pinned
                else "none"
            ),
            "wrk_command": " ".join(
                wrk.command(
                    wrk.Request("GET", "<url>"),
                    seconds=args.seconds,
                    connections=args.connections,
                    threads=args.threads,
                    cpus=load_cpus,
                )
            ).replace(str(wrk.SCRIPT), "bench/lua/request.lua"),
            "upstream": "bench.upstream (simulator, fast preset, no concurrency limit)",
            "proxy_config": "watcher off, admin off, logging warning (proxy-info: info, the "
            "default, one JSON access line per request to a file), preflight off",
            "submit_body": json.loads(SUBMIT_BODY),
        },
        "scenarios": results,
        "open_loop": loops,
        "proxy_log_tail": proxy_log,
    }
    report["markdown"] = markdown(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    args.output.with_suffix(".md").write_text(report["markdown"] + "\n", encoding="utf-8")
    print(table(report))
    print()
    print(report["markdown"])
    log(f"wrote {args.output} and {args.output.with_suffix('.md')} in {report['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
