"""``serve --workers 2`` against ``--workers 1``: forwarded polls on PostgreSQL, same run.

Run: ``python -m bench.workers [--seconds 5] [--rounds 2] [--connections 64]`` (about a
minute; needs wrk and PostgreSQL). It starts the benchmark upstream (``bench.upstream``)
and two proxies on one fresh PostgreSQL database, ``--workers 1`` and ``--workers 2``
(watcher and admin off, logging warning, preflight off), creates 1,000 tasks the proxies
do not know, then runs wrk against each proxy in turn, rounds alternating, polls rotating
through the 1,000 ids. Nothing is pinned: the two workers need both CPUs, which wrk and
the upstream share with them (and with whatever else the machine runs: the load average
is printed). Reports req/s, p50/p99, CPU of the proxy's processes and of the upstream.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import wrk
from bench.common import (
    AUTH,
    DISTINCT_IDS,
    SUBMIT_BODY,
    create_pg_database,
    drop_pg_database,
    log,
    machine_cpu_ticks,
    many,
    pin,
    proxy_env,
    submit,
    write_paths,
)
from bench.report import machine
from bench.upstream import KEEP_PROMPT
from harness.config import clean_environ
from harness.ports import free_port
from harness.services import cpu_seconds, proxy_command, service


def group_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (a supervisor and its workers)."""
    total = cpu_seconds(pid)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii")
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    total += cpu_seconds(int(entry))
    return total


def busy_and_total() -> tuple[float, float]:
    """Busy and total CPU time of the whole machine so far (``/proc/stat``, clock ticks)."""
    fields = machine_cpu_ticks()
    idle = fields[3] + fields[4]  # idle + iowait
    return float(sum(fields) - idle), float(sum(fields))


def listening_workers(pid: int, port: int) -> int:
    """How many children of ``pid`` listen on TCP ``port`` (IPv4), from ``/proc``."""
    ports: dict[str, int] = {}
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":
            ports[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    count = 0
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii")
            if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
                continue
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    inode = os.readlink(f"/proc/{entry}/fd/{fd}").removeprefix("socket:[")
                    if ports.get(inode.rstrip("]")) == port:
                        count += 1
                        break
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    pg_name = f"modellix_bench_workers_{os.getpid()}"
    pg_url = create_pg_database(pg_name)
    if pg_url is None:
        log("PostgreSQL is needed (more than one worker needs it)")
        return 2
    env_clean = clean_environ("MODELLIX_")
    rows: list[dict[str, Any]] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="modellix-bench-workers-") as tmp,
            contextlib.ExitStack() as stack,
        ):
            workdir = Path(tmp)
            up_port = free_port()
            upstream = f"http://127.0.0.1:{up_port}"
            argv_up = [sys.executable, "-m", "bench.upstream", "--port", str(up_port)]
            up = stack.enter_context(
                service(
                    "upstream",
                    argv_up,
                    base_url=upstream,
                    ready_path="/_sim/state",
                    workdir=workdir,
                    env=env_clean,
                    cpus=None,
                )
            )
            peers = {}
            for workers in (1, 2):
                port = free_port()
                env = proxy_env(port, upstream, pg_url)
                env["MODELLIX_PROXY_WORKERS"] = str(workers)
                peers[workers] = stack.enter_context(
                    service(
                        f"proxy-w{workers}",
                        proxy_command(),
                        base_url=f"http://127.0.0.1:{port}",
                        ready_path="/healthz",
                        workdir=workdir,
                        env=env,
                        cpus=None,
                    )
                )
            keep = json.dumps(json.loads(SUBMIT_BODY) | {"prompt": KEEP_PROMPT})

            def foreign_done(_: int) -> str:
                task_id = submit(upstream, keep)
                pin(upstream, task_id, "done")
                return task_id

            log(f"creating {DISTINCT_IDS} foreign tasks")
            foreign = many(DISTINCT_IDS, foreign_done)
            paths = write_paths(workdir, "foreign", foreign)
            deadline = time.monotonic() + 30
            while (
                listening_workers(peers[2].process.pid, int(peers[2].base_url.rsplit(":")[-1])) < 2
            ):
                if time.monotonic() > deadline:  # /healthz answers once worker 0 listens
                    raise RuntimeError("the second worker did not start")
                time.sleep(0.1)
            for round_no in range(args.rounds):
                for workers, peer in peers.items():
                    request = wrk.Request(
                        "GET", peer.base_url + f"/api/v1/tasks/{foreign[0]}", "", AUTH,
                        paths_file=str(paths),
                    )  # fmt: skip
                    common = {"connections": args.connections, "threads": args.threads}
                    wrk.run(request, seconds=args.warmup, **common)
                    cpu0 = group_cpu(peer.process.pid), cpu_seconds(up.process.pid)
                    machine0 = busy_and_total()
                    result = wrk.run(request, seconds=args.seconds, **common)
                    cpu1 = group_cpu(peer.process.pid), cpu_seconds(up.process.pid)
                    machine1 = busy_and_total()
                    row = {
                        "round": round_no + 1,
                        "workers": workers,
                        "rps": round(result.requests_per_second),
                        "p50_ms": result.p50,
                        "p99_ms": result.p99,
                        "non_2xx": result.non_2xx,
                        "proxy_cpu_percent": round(100 * (cpu1[0] - cpu0[0]) / result.seconds),
                        "upstream_cpu_percent": round(100 * (cpu1[1] - cpu0[1]) / result.seconds),
                        "requests_per_proxy_cpu_second": round(
                            result.requests / max(1e-9, cpu1[0] - cpu0[0])
                        ),
                        # Every CPU of the machine (wrk, upstream, PostgreSQL, other work).
                        "machine_busy_percent": round(
                            100 * (machine1[0] - machine0[0]) / max(1.0, machine1[1] - machine0[1])
                        ),
                        "load_1min": round(os.getloadavg()[0], 2),
                    }
                    rows.append(row)
                    log(json.dumps(row))
    finally:
        drop_pg_database(pg_name)
    one = [r["rps"] for r in rows if r["workers"] == 1]
    two = [r["rps"] for r in rows if r["workers"] == 2]
    report = {
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "wrk": f"-t{args.threads} -c{args.connections} -d{args.seconds:g}s, {DISTINCT_IDS} ids",
        "rows": rows,
        "mean_rps": {"1": sum(one) / len(one), "2": sum(two) / len(two)},
        "ratio": round(sum(two) / sum(one), 2),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
