"""What the default ``info`` level costs per forwarded poll, against ``warning``.

Run: ``python -m bench.logcost [--rounds 5] [--seconds 4]`` (``make bench`` runs it). Two
proxies in front of one mock upstream answering at once (``bench.mock --delay-ms 0``), the
same configuration but ``logging.level`` (``warning``; ``info``, the default: one JSON
access line per request, to a file), polls of 1,000 distinct task ids with wrk at 16
connections. The two are measured in alternating rounds (which runs first alternates too),
so the machine's other load falls on both alike, and each figure is the median over the
rounds of the proxy's CPU (user + system, ``/proc``) per answered poll. With two or more
CPUs the proxies run on CPU 1, wrk and the mock on CPU 0. The target: ``info`` at most
1.15 times ``warning``.

Each round's own ratio (its two runs, back to back) and their median are printed beside it:
on a shared VM the CPU time of one poll moves by a third between runs a minute apart with
no steal counted (the host's other work slows this VM's CPUs without taking them), and one
such spell can move a level's median.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import wrk
from bench.common import RESULTS, log, proxy_env
from bench.report import machine
from harness.config import clean_environ
from harness.ports import free_port
from harness.services import cpu_seconds, proxy_command, service

LEVELS = ("warning", "info")
TARGET = 1.15


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--output", type=Path, default=RESULTS / "logcost.json")
    args = parser.parse_args(argv)
    pinned = len(os.sched_getaffinity(0)) >= 2
    load_cpus, peer_cpus = ("0", "1") if pinned else (None, None)
    ports = {name: free_port() for name in ("mock", *LEVELS)}
    mock_url = f"http://127.0.0.1:{ports['mock']}"
    clean = clean_environ("MODELLIX_")
    per_poll: dict[str, list[float]] = {level: [] for level in LEVELS}
    with (
        tempfile.TemporaryDirectory(prefix="modellix-logcost-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        paths = workdir / "tasks.paths"
        paths.write_text("".join(f"/api/v1/tasks/logcost-{i}\n" for i in range(1000)))
        mock = [sys.executable, "-m", "bench.mock", "--port", str(ports["mock"]), "--delay-ms", "0"]
        stack.enter_context(
            service(
                "mock",
                mock,
                base_url=mock_url,
                ready_path="/_sim/state",
                workdir=workdir,
                env=clean,
                cpus=load_cpus,
            )
        )
        peers = {}
        for level in LEVELS:
            env = proxy_env(ports[level], mock_url, f"sqlite:///{tmp}/{level}.db")
            env["MODELLIX_PROXY_LOGGING__LEVEL"] = level
            peers[level] = stack.enter_context(
                service(
                    level,
                    proxy_command(),
                    base_url=f"http://127.0.0.1:{ports[level]}",
                    ready_path="/healthz",
                    workdir=workdir,
                    env=env,
                    cpus=peer_cpus,
                )
            )
        for round_ in range(args.rounds):
            # The order alternates too: neither level always runs right after the other.
            for level in LEVELS if round_ % 2 == 0 else LEVELS[::-1]:
                url = f"http://127.0.0.1:{ports[level]}"
                request = wrk.Request("GET", url, paths_file=str(paths))
                wrk.run(request, seconds=1, connections=args.connections, cpus=load_cpus)
                before = cpu_seconds(peers[level].process.pid)
                result = wrk.run(
                    request, seconds=args.seconds, connections=args.connections, cpus=load_cpus
                )
                spent = cpu_seconds(peers[level].process.pid) - before
                per_poll[level].append(round(1e6 * spent / max(1, result.requests), 1))
                log(f"logcost round {round_ + 1} {level}: {per_poll[level][-1]} µs per poll")
    medians = {level: round(statistics.median(v), 1) for level, v in per_poll.items()}
    ratio = round(medians["info"] / medians["warning"], 3)
    # Each round's own ratio: its two runs back to back, under the same load of the host's.
    paired = [round(i / w, 3) for i, w in zip(per_poll["info"], per_poll["warning"], strict=True)]
    report = {
        "machine": machine(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "rounds": per_poll,
        "median_cpu_us_per_poll": medians,
        "info_over_warning": ratio,
        "info_over_warning_by_round": paired,
        "median_of_rounds_ratios": round(statistics.median(paired), 3),
        "target_at_most": TARGET,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"CPU per forwarded poll, median of {args.rounds} rounds: warning {medians['warning']} µs, "
        f"info {medians['info']} µs: {ratio}x (target <= {TARGET}x); each round's own ratio "
        f"{', '.join(map(str, paired))}, median {report['median_of_rounds_ratios']}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
