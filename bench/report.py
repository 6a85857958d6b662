"""What a benchmark run reports: the machine, the ratios, the table and the markdown snippet."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
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


def ratios(direct: wrk.WrkResult, proxy: wrk.WrkResult) -> dict[str, float]:
    return {
        "throughput": round(proxy.requests_per_second / direct.requests_per_second, 3),
        "p50": round(proxy.p50 / direct.p50, 3),
        "p99": round(proxy.p99 / direct.p99, 3),
        "added_p50_ms": round(proxy.p50 - direct.p50, 3),
        "added_p99_ms": round(proxy.p99 - direct.p99, 3),
    }


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def markdown(report: Mapping[str, Any]) -> str:
    m = report["machine"]
    s = report["settings"]
    load = report["load_average"]
    lines = [
        f"Loopback, {s['connections']} connections, {s['seconds']:g} s per run after a "
        f"{s['warmup']:g} s warm-up, `{s['wrk_command']}`; CPU pinning: {s['pinning']}.",
        f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, {m['memory_gib']} GiB, "
        f"{m['kernel']}; Python {m['python']}, aiohttp {m['aiohttp']}, {m['wrk']}; "
        f"commit {m['commit']}; {report['finished_at']}; load average (1 min) "
        f"{load['before'][0]} before, {load['after'][0]} after.",
        "",
        "| scenario | direct req/s | proxy req/s | proxy/direct | direct p50 / p99 ms "
        "| proxy p50 / p99 ms | p50 × / p99 × | added p50 / p99 ms | proxy CPU µs/req "
        "| non-2xx direct / proxy |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in report["scenarios"]:
        d, p, r = row["direct"], row["proxy"], row["ratios"]
        lines.append(
            f"| {row['title']} | {d['requests_per_second']:.0f} | {p['requests_per_second']:.0f} "
            f"| {r['throughput']:.2f} "
            f"| {_ms(d['latency_ms']['50'])} / {_ms(d['latency_ms']['99'])} "
            f"| {_ms(p['latency_ms']['50'])} / {_ms(p['latency_ms']['99'])} "
            f"| {r['p50']:.2f} / {r['p99']:.2f} "
            f"| {r['added_p50_ms']:+.2f} / {r['added_p99_ms']:+.2f} "
            f"| {p['cpu_us_per_request']['proxy']:.0f} "
            f"| {d['non_2xx']} / {p['non_2xx']} |"
        )
    return "\n".join(lines)


def table(report: Mapping[str, Any]) -> str:
    head = (
        f"{'scenario':<18} {'direct r/s':>10} {'proxy r/s':>10} {'ratio':>6} "
        f"{'direct p50/p99 ms':>18} {'proxy p50/p99 ms':>18} {'added p50/p99 ms':>18} "
        f"{'non-2xx d/p':>12}"
    )
    rows = [head, "-" * len(head)]
    for row in report["scenarios"]:
        d, p, r = row["direct"], row["proxy"], row["ratios"]
        added = f"{r['added_p50_ms']:+.2f} / {r['added_p99_ms']:+.2f}"
        rows.append(
            f"{row['key']:<18} {d['requests_per_second']:>10.0f} {p['requests_per_second']:>10.0f} "
            f"{r['throughput']:>6.2f} "
            f"{_ms(d['latency_ms']['50']) + ' / ' + _ms(d['latency_ms']['99']):>18} "
            f"{_ms(p['latency_ms']['50']) + ' / ' + _ms(p['latency_ms']['99']):>18} "
            f"{added:>18} "
            f"{str(d['non_2xx']) + ' / ' + str(p['non_2xx']):>12}"
        )
    return "\n".join(rows)


# --- main ------------------------------------------------------------------------------------
