"""What a benchmark run reports: the machine, the ratios, the table and the markdown snippet."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import wrk

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gib": mem_gib,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "aiohttp": metadata.version("aiohttp"),
        "wrk": wrk.version(),
        "hostname": platform.node(),
        "commit": git_commit(),
    }


def run_header(started: float, load_before: tuple[float, float, float]) -> dict[str, Any]:
    """What every benchmark report starts with: when it finished, how long it ran (from the
    ``time.monotonic()`` reading ``started``), the machine, and its load average before and
    after, since a figure from a shared machine means little without them."""
    return {
        "finished_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
    }


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (uncommitted changes)' if dirty else ''}"


PEERS = ("direct", "bare", "proxy", "proxy-info", "proxy-pg")


def ratios(
    measured: Mapping[str, wrk.WrkResult], rows: Mapping[str, Mapping[str, Any]], name: str
) -> dict[str, float | None]:
    """``name`` against the bare pass-through (the framework's floor) and against direct."""
    peer = measured[name]
    out: dict[str, float | None] = {}
    for base in ("bare", "direct"):
        ref = measured.get(base)
        if ref is None or base == name:
            continue
        out[f"throughput_vs_{base}"] = round(peer.requests_per_second / ref.requests_per_second, 3)
        out[f"added_p50_ms_vs_{base}"] = round(peer.p50 - ref.p50, 3)
        out[f"added_p99_ms_vs_{base}"] = round(peer.p99 - ref.p99, 3)
    bare_cpu = rows.get("bare", {}).get("cpu_us_per_request", {}).get("bare")
    own_cpu = rows[name].get("cpu_us_per_request", {}).get(name)
    if bare_cpu and own_cpu and name != "bare":
        # CPU per request of the floor over the peer's: the throughput ratio both would
        # reach with a whole core each and an upstream that is never the bottleneck.
        out["cpu_ratio_vs_bare"] = round(bare_cpu / own_cpu, 3)
    return out


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def markdown(report: Mapping[str, Any]) -> str:
    m = report["machine"]
    s = report["settings"]
    load = report["load_average"]
    lines = [
        f"Loopback, wrk with {s['connections']} connections, {s['seconds']:g} s per run after a "
        f"{s['warmup']:g} s warm-up (`{s['wrk_command']}`); polls rotate through "
        f"{s['distinct_ids']} distinct task ids unless the scenario says one id. "
        f"CPU pinning: {s['pinning']}. Proxy: {s['proxy_config']}.",
        f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, {m['memory_gib']} GiB, "
        f"{m['kernel']}; Python {m['python']}, aiohttp {m['aiohttp']}, {m['wrk']}; "
        f"commit {m['commit']}; {report['finished_at']}; load average (1/5/15 min) "
        f"{' / '.join(map(str, load['before']))} before, "
        f"{' / '.join(map(str, load['after']))} after; {report['wall_seconds']} s in all.",
        "",
        "| scenario | peer | req/s | × bare | × direct | p50 / p99 ms | added p50 / p99 ms "
        "over bare | CPU µs/req | CPU × bare | upstream requests | non-2xx |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in report["scenarios"]:
        for name in PEERS:
            peer = row["peers"].get(name)
            if peer is None:
                continue
            r = row["ratios"].get(name, {})
            added = (
                f"{r['added_p50_ms_vs_bare']:+.2f} / {r['added_p99_ms_vs_bare']:+.2f}"
                if "added_p50_ms_vs_bare" in r
                else "–"
            )
            cpu = peer["cpu_us_per_request"].get(name)
            upstream = sum(peer["upstream_requests"].values())
            lines.append(
                f"| {row['title'] if name == next(iter(row['peers'])) else ''} | {name} "
                f"| {peer['requests_per_second']:.0f} | {_x(r.get('throughput_vs_bare'))} "
                f"| {_x(r.get('throughput_vs_direct'))} "
                f"| {_ms(peer['latency_ms']['50'])} / {_ms(peer['latency_ms']['99'])} "
                f"| {added} | {cpu:.0f} | {_x(r.get('cpu_ratio_vs_bare'))} "
                f"| {upstream} | {peer['non_2xx']} |"
            )
    if report.get("open_loop"):
        lines += [
            "",
            "Open loop (bench.openloop: polls of the distinct foreign ids on a fixed schedule, "
            "latency from each request's due time):",
            "",
            "| target polls/s | peer | achieved/s | p50 / p99 ms | added p50 / p99 ms over bare "
            "| peer CPU % | failed |",
            "|--:|---|--:|--:|--:|--:|--:|",
        ]
        bare = {o["target_rate"]: o for o in report["open_loop"] if o["peer"] == "bare"}
        for o in report["open_loop"]:
            ref = bare.get(o["target_rate"])
            added = "–"
            if ref is not None and o["peer"] != "bare":
                added = (
                    f"{o['latency_ms']['50'] - ref['latency_ms']['50']:+.2f} / "
                    f"{o['latency_ms']['99'] - ref['latency_ms']['99']:+.2f}"
                )
            lines.append(
                f"| {o['target_rate']:g} | {o['peer']} | {o['achieved_rate']:.0f} "
                f"| {_ms(o['latency_ms']['50'])} / {_ms(o['latency_ms']['99'])} | {added} "
                f"| {o['cpu_percent']:.0f} | {o['failed'] + o['shed']} |"
            )
    return "\n".join(lines)


def table(report: Mapping[str, Any]) -> str:
    head = (
        f"{'scenario':<16} {'peer':<9} {'req/s':>8} {'×bare':>6} {'×direct':>8} "
        f"{'p50/p99 ms':>16} {'CPU µs/req':>11} {'CPU×bare':>9} {'non-2xx':>8}"
    )
    rows = [head, "-" * len(head)]
    for row in report["scenarios"]:
        for name in PEERS:
            peer = row["peers"].get(name)
            if peer is None:
                continue
            r = row["ratios"].get(name, {})
            latency = f"{_ms(peer['latency_ms']['50'])} / {_ms(peer['latency_ms']['99'])}"
            rows.append(
                f"{row['key']:<16} {name:<9} {peer['requests_per_second']:>8.0f} "
                f"{_x(r.get('throughput_vs_bare')):>6} {_x(r.get('throughput_vs_direct')):>8} "
                f"{latency:>16} {peer['cpu_us_per_request'].get(name, 0):>11.0f} "
                f"{_x(r.get('cpu_ratio_vs_bare')):>9} {peer['non_2xx']:>8}"
            )
    return "\n".join(rows)
