"""Latency against concurrency over a 22 ms upstream: direct, the bare pass-through, the proxy.

Run: ``python -m bench.sweep [--seconds 5] [--warmup 1] [--concurrency 1,4,16,64] [--rounds 5]``
(``make bench`` runs it after ``bench.run``). The methodology of the public AI-gateway latency
benchmark (``bench.published``): a mock upstream answering after 22 ms (``bench.mock``),
closed-loop clients at c = 1, 4, 16 and 64 (wrk, one connection per client), polls naming
distinct task ids, and what each peer adds to the upstream's own p50 and p99. In one run,
at each concurrency in turn: the mock directly, the bare aiohttp pass-through
(``bench.bare``, the framework's floor) and ``modellix-proxy serve`` in its default
configuration (logging ``info``, watcher on, SQLite; only the ports, upstream and store
file given). With two or more CPUs the peer runs on CPU 1, wrk and the mock on CPU 0.
While one peer is measured the other is stopped (SIGSTOP, resumed before its own warm-up):
the proxy's background work, idle, is about 3 ms of CPU a second in bursts, and on the CPU
the bare pass-through shares it would be charged to the bare pass-through's tail.
``--rounds N`` measures each concurrency N times, the peers' order rotated each round. Each
peer's percentiles are taken over every request of its rounds together (wrk's histograms,
pooled): the p99 of one 5-second run at c = 16 rests on the slowest ~35 requests, and one
pause of the machine's other load moves it by a millisecond; pooled over interleaved rounds,
such a pause weighs on every peer alike. The medians over the rounds and each round's ratio
are reported beside it, to show the spread. On a shared VM the host takes CPU from the
machine now and then (``/proc/stat``'s steal): 100 ms to 2 s in a 10-second run was seen,
and the peer measured meanwhile had a p99 10 to 25 ms higher. A round during which the
host took more than ``--max-steal-ms`` (50) while any peer was measured is set aside and
measured again, up to as many extra rounds as were asked for; if too few rounds stay under
the limit, the least stolen of those set aside make up the number. The rounds set aside and
each kept round's steal are in the results.
The figures go to stdout and ``bench/results/sweep.json`` / ``sweep.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from bench import published, wrk
from bench.common import RESULTS, log, machine_cpu_ticks
from bench.report import run_header
from harness.config import clean_environ
from harness.ports import free_port
from harness.services import proxy_command, service

PEERS = ("direct", "bare", "proxy")
DISTINCT_IDS = 100_000
MAX_STEAL_MS = 50.0  # of CPU taken by the host while one peer is measured (see --max-steal-ms)
TARGET_RATIO = 1.5  # the proxy's added p99 at c = 16, at most this times the bare floor's


def default_proxy_env(port: int, admin_port: int, upstream: str, store_url: str) -> dict[str, str]:
    """The default configuration: only where to listen, the upstream and the store file."""
    env = clean_environ()
    env.update(
        MODELLIX_PROXY_LISTEN__HOST="127.0.0.1",
        MODELLIX_PROXY_LISTEN__PORT=str(port),
        MODELLIX_PROXY_ADMIN__PORT=str(admin_port),
        MODELLIX_PROXY_UPSTREAM__ORIGIN=upstream,
        MODELLIX_PROXY_STORE__URL=store_url,
    )
    return env


def added(peer: dict[str, float], direct: dict[str, float]) -> dict[str, float]:
    return {q: round(peer[q] - direct[q], 2) for q in ("50", "99")}


def markdown(report: dict[str, Any]) -> str:
    rounds = report["settings"]["rounds"]
    rows = [
        f"Percentiles over every request of {rounds} interleaved round(s) per peer "
        f"({report['settings']['seconds']:g} s each); the last three columns: the ratio of "
        "the medians over the rounds, the rounds set aside and measured again (during "
        f"which the host took more than {report['settings']['max_steal_ms']:g} ms of CPU "
        "from the machine while a peer was measured), and each round's own ratio.",
        "",
        "| c | direct p50 / p99 (ms) | bare: added p50 / p99 | proxy (defaults): added p50 / p99 "
        "| proxy ÷ bare, added p99 | req/s direct / bare / proxy "
        "| medians' ratio | rounds set aside (host steal, ms) | each round's ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for point in report["points"]:
        d = point["direct"]["latency_ms"]
        b, p = point["added_ms"]["bare"], point["added_ms"]["proxy"]
        rates = " / ".join(f"{point[n]['requests_per_second']:.0f}" for n in PEERS)
        by_round = ", ".join(_shown(r) for r in point["proxy_over_bare_p99_by_round"])
        aside = point["set_aside"]
        stolen = ", ".join(f"{max(r['host_steal_ms'].values()):.0f}" for r in aside)
        set_aside = f"{len(aside)} ({stolen})" if aside else "0"
        rows.append(
            f"| {point['concurrency']} | {d['50']:.2f} / {d['99']:.2f} "
            f"| {b['50']:+.2f} / {b['99']:+.2f} | {p['50']:+.2f} / {p['99']:+.2f} "
            f"| {_shown(point['proxy_over_bare_p99'])} | {rates} "
            f"| {_shown(point['median_of_rounds_proxy_over_bare_p99'])} | {set_aside} "
            f"| {by_round} |"
        )
    rows += ["", f"Published, added p99 at c = {published.CONCURRENCY} ({published.SOURCE}):", ""]
    rows += ["| gateway | added p99 (ms) |", "|---|---|"]
    rows += [f"| {f.gateway} | +{f.added_p99_ms} |" for f in published.FIGURES]
    return "\n".join(rows)


def _shown(ratio: float | None) -> str:
    """A ratio as printed; a dash where the floor added nothing (no ratio to take)."""
    return "–" if ratio is None else str(ratio)


def steal_ms() -> float:
    """CPU time the host has taken from this machine's CPUs so far (``/proc/stat``'s
    ``steal``, all CPUs), in milliseconds; 0 where the kernel does not count it."""
    try:
        fields = machine_cpu_ticks()
    except OSError:
        return 0.0
    ticks = fields[7] if len(fields) > 7 else 0
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


class Round(NamedTuple):
    """One round at one concurrency: each peer's run, and the CPU time the host took from
    the machine while each was measured."""

    results: dict[str, wrk.WrkResult]
    steal_ms: dict[str, float]


def measure_round(
    bases: dict[str, str],
    paths: str,
    c: int,
    args: argparse.Namespace,
    cpus: str | None,
    index: int,
    pausable: Mapping[str, subprocess.Popen[bytes]],
) -> Round:
    """One round at concurrency ``c``: each peer in turn, the order rotated every round
    (so no peer always runs right after another's load), the ``pausable`` peers other than
    the one measured stopped meanwhile."""
    shift = index % len(PEERS)
    result_of: dict[str, wrk.WrkResult] = {}
    stolen: dict[str, float] = {}
    for name in PEERS[shift:] + PEERS[:shift]:
        request = wrk.Request("GET", bases[name], paths_file=paths)
        with only_running(name, pausable):
            wrk.run(request, seconds=args.warmup, connections=c, cpus=cpus)
            before = steal_ms()
            result = wrk.run(request, seconds=args.seconds, connections=c, cpus=cpus)
            stolen[name] = round(steal_ms() - before, 1)
        if result.non_2xx:
            raise RuntimeError(f"{name} at c={c}: {result.statuses} {result.sample_failure}")
        result_of[name] = result
        log(
            f"sweep c={c} round {index + 1} {name}: "
            f"p50 {result.p50:.2f} ms, p99 {result.p99:.2f} ms, host steal {stolen[name]:.0f} ms"
        )
    return Round(result_of, stolen)


def measure_point(
    bases: dict[str, str],
    paths: str,
    c: int,
    args: argparse.Namespace,
    cpus: str | None,
    pausable: Mapping[str, subprocess.Popen[bytes]],
) -> tuple[list[Round], list[Round]]:
    """``args.rounds`` rounds at ``c`` during which the host took at most
    ``args.max_steal_ms`` of CPU from the machine while any peer was measured; a round
    over it is set aside and measured again, at most ``args.rounds`` times more. Returns
    the rounds kept and those set aside (when the extra rounds run out, the least stolen
    of the set-aside ones are kept to make up the number)."""
    kept: list[Round] = []
    aside: list[Round] = []
    index = 0
    while len(kept) < args.rounds and index < 2 * args.rounds:
        measured = measure_round(bases, paths, c, args, cpus, index, pausable)
        index += 1
        if max(measured.steal_ms.values()) <= args.max_steal_ms:
            kept.append(measured)
        else:
            aside.append(measured)
            log(f"sweep c={c}: round set aside, the host took {measured.steal_ms} ms of CPU")
    aside.sort(key=lambda r: max(r.steal_ms.values()))
    while len(kept) < args.rounds and aside:
        kept.append(aside.pop(0))
    return kept, aside


@contextlib.contextmanager
def only_running(name: str, pausable: Mapping[str, subprocess.Popen[bytes]]) -> Iterator[None]:
    """The ``pausable`` peers other than ``name`` stopped (SIGSTOP) for the block; all of
    them running again after it, whatever happens in it."""
    try:
        for other, process in pausable.items():
            if other != name:
                process.send_signal(signal.SIGSTOP)
        yield
    finally:
        for process in pausable.values():
            process.send_signal(signal.SIGCONT)


def summarize(c: int, measured: list[Round], aside: list[Round]) -> dict[str, Any]:
    """The point at ``c``: each peer's percentiles over every request of every round
    (the rounds' histograms pooled: a p99 over N rounds rests on N times the requests
    of one, and the rounds, interleaved in time, spread the machine's other load over
    every peer alike), what bare and the proxy add to direct's, and beside them the
    medians over the rounds and each round's ratio, to show the spread."""
    point: dict[str, Any] = {"concurrency": c}
    rounds = [r.results for r in measured]
    for name in PEERS:
        runs = [r[name] for r in rounds]
        histogram = wrk.pooled(run.histogram_us for run in runs)
        point[name] = {
            "latency_ms": {
                q: wrk.percentile_ms(histogram, float(q)) for q in ("50", "75", "90", "99")
            },
            "requests": sum(histogram.values()),
            "requests_per_second": statistics.median(run.requests_per_second for run in runs),
            "median_of_rounds_latency_ms": {
                q: round(statistics.median(run.latency_ms[q] for run in runs), 2)
                for q in runs[0].latency_ms
            },
        }
    direct = point["direct"]["latency_ms"]
    point["added_ms"] = {n: added(point[n]["latency_ms"], direct) for n in PEERS if n != "direct"}
    point["proxy_over_bare_p99"] = _over(point["added_ms"])
    medians = point["direct"]["median_of_rounds_latency_ms"]
    point["median_of_rounds_added_ms"] = {
        n: added(point[n]["median_of_rounds_latency_ms"], medians) for n in PEERS if n != "direct"
    }
    point["median_of_rounds_proxy_over_bare_p99"] = _over(point["median_of_rounds_added_ms"])
    point["rounds"] = [{n: r[n].as_json() for n in PEERS} for r in rounds]
    point["proxy_over_bare_p99_by_round"] = [
        _ratio(r["proxy"].latency_ms, r["bare"].latency_ms, r["direct"].latency_ms) for r in rounds
    ]
    point["host_steal_ms_by_round"] = [r.steal_ms for r in measured]
    point["set_aside"] = [
        {"host_steal_ms": r.steal_ms, "p99_ms": {n: r.results[n].p99 for n in PEERS}} for r in aside
    ]
    return point


def _over(added_ms: dict[str, dict[str, float]]) -> float | None:
    bare99, proxy99 = added_ms["bare"]["99"], added_ms["proxy"]["99"]
    return round(proxy99 / bare99, 2) if bare99 > 0 else None


def _ratio(
    proxy: dict[str, float], bare: dict[str, float], direct: dict[str, float]
) -> float | None:
    bare99 = bare["99"] - direct["99"]
    proxy99 = proxy["99"] - direct["99"]
    return round(proxy99 / bare99, 2) if bare99 > 0 else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds per concurrency, the peers' order rotated each round; percentiles are "
        "taken over every request of the rounds together (on a shared machine a single "
        "run's p99 moves with the other load)",
    )
    parser.add_argument(
        "--max-steal-ms",
        type=float,
        default=MAX_STEAL_MS,
        help="a round during which the host took more CPU than this from the machine while "
        "a peer was measured is set aside and measured again (a shared VM's neighbours "
        "stall a peer for tens of milliseconds; such a round says nothing of the peer)",
    )
    parser.add_argument("--delay-ms", type=float, default=published.UPSTREAM_DELAY_MS)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument(
        "--proxy-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the proxy beside the defaults (to find what the tail comes from)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "sweep.json")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    pinned = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    load_cpus, peer_cpus = ("0", "1") if pinned else (None, None)
    ports = {name: free_port() for name in (*PEERS, "admin")}
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    clean = clean_environ("MODELLIX_")
    started = time.monotonic()
    load_before = os.getloadavg()
    points: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="modellix-sweep-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        paths = workdir / "tasks.paths"
        paths.write_text("".join(f"/api/v1/tasks/sweep-{i}\n" for i in range(DISTINCT_IDS)))
        py = sys.executable
        mock = ["-m", "bench.mock", "--port", str(ports["direct"])]
        bare = ["-m", "bench.bare", "--port", str(ports["bare"]), "--upstream", bases["direct"]]
        argvs = {
            "direct": (
                [py, *mock, "--delay-ms", str(args.delay_ms)],
                clean,
                load_cpus,
                "/_sim/state",
            ),
            "bare": (
                [py, *bare],
                clean,
                peer_cpus,
                "/_sim/state",
            ),
            "proxy": (
                proxy_command(),
                default_proxy_env(
                    ports["proxy"], ports["admin"], bases["direct"], f"sqlite:///{tmp}/sweep.db"
                )
                | dict(kv.split("=", 1) for kv in args.proxy_env),
                peer_cpus,
                "/healthz",
            ),
        }
        pausable: dict[str, subprocess.Popen[bytes]] = {}
        for name in PEERS:
            argv_, env, cpus, ready = argvs[name]
            running = stack.enter_context(
                service(
                    name,
                    argv_,
                    base_url=bases[name],
                    ready_path=ready,
                    workdir=workdir,
                    env=env,
                    cpus=cpus,
                )
            )
            if name != "direct":  # the mock answers every peer: never stopped
                pausable[name] = running.process
        for c in levels:
            kept, aside = measure_point(bases, str(paths), c, args, load_cpus, pausable)
            points.append(summarize(c, kept, aside))
    report: dict[str, Any] = {
        **run_header(started, load_before),
        "settings": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "max_steal_ms": args.max_steal_ms,
            "warmup": args.warmup,
            "upstream_delay_ms": args.delay_ms,
            "distinct_ids": DISTINCT_IDS,
            "pinning": "peer on CPU 1; wrk and the mock on CPU 0" if pinned else "none",
            "proxy_config": "defaults (logging info, watcher on, SQLite)",
            "proxy_env": args.proxy_env,
        },
        "points": points,
        "published": {
            "source": published.SOURCE,
            "concurrency": published.CONCURRENCY,
            "added_p99_ms": {f.gateway: f.added_p99_ms for f in published.FIGURES},
        },
    }
    at16 = next((p for p in points if p["concurrency"] == published.CONCURRENCY), None)
    if at16 is not None:
        report["target"] = {
            "proxy_over_bare_added_p99_at_16": at16["proxy_over_bare_p99"],
            "at_most": TARGET_RATIO,
            "median_of_rounds_ratio": at16["median_of_rounds_proxy_over_bare_p99"],
            "by_round": at16["proxy_over_bare_p99_by_round"],
        }
    report["markdown"] = markdown(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    args.output.with_suffix(".md").write_text(report["markdown"] + "\n", encoding="utf-8")
    print(report["markdown"])
    log(f"wrote {args.output} in {report['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
