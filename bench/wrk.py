"""Running ``wrk`` with ``bench/lua/request.lua`` and reading what it prints."""

from __future__ import annotations

import math
import os
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "lua" / "request.lua"

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$")
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_STATUS = re.compile(r"^BENCH_STATUS (\d+) (\d+)$")
_LATENCY = re.compile(r"^BENCH_LATENCY (\d+) (\d+)$")


@dataclass(frozen=True, slots=True)
class Request:
    """What every connection sends, over and over."""

    method: str
    url: str
    body: str = ""
    authorization: str = "Bearer bench-key"
    paths_file: str = ""  # one path per line: requests rotate through them
    fresh_keys: bool = False  # a fresh Idempotency-Key on every request


@dataclass(slots=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles (ms), answers by status."""

    requests_per_second: float
    requests: int
    seconds: float
    latency_ms: dict[str, float]
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    sample_failure: str | None = None
    # every request's latency: microseconds -> how many requests took that long
    histogram_us: dict[int, int] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return self.latency_ms["50"]

    @property
    def p99(self) -> float:
        return self.latency_ms["99"]

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        del doc["histogram_us"]  # thousands of lines: pooled by the caller, not kept
        doc["statuses"] = {str(k): v for k, v in sorted(self.statuses.items())}
        doc["non_2xx"] = self.non_2xx
        return doc


class WrkError(RuntimeError):
    pass


def command(
    request: Request,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    cpus: str | None = None,
    timeout_seconds: float = 5.0,
) -> list[str]:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout_seconds))}s",
        "--latency",
        "-s",
        str(SCRIPT),
        request.url,
    ]
    return (["taskset", "-c", cpus, *argv]) if cpus else argv


def run(
    request: Request,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    cpus: str | None = None,
) -> WrkResult:
    """Run wrk once for ``seconds`` and parse its report."""
    env = dict(os.environ)
    env.update(
        BENCH_METHOD=request.method,
        BENCH_BODY=request.body,
        BENCH_AUTH=request.authorization,
        BENCH_PATHS_FILE=request.paths_file,
        BENCH_IDEMPOTENCY="1" if request.fresh_keys else "0",
    )
    argv = command(request, seconds=seconds, connections=connections, threads=threads, cpus=cpus)
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    if done.returncode != 0:
        raise WrkError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return parse(done.stdout)


def parse(output: str) -> WrkResult:
    """The figures of a ``wrk --latency`` report printed with ``request.lua``."""
    rate: float | None = None
    total = 0
    seconds = 0.0
    latency: dict[str, float] = {}
    statuses: dict[int, int] = {}
    sockets: dict[str, int] = {}
    sample: str | None = None
    histogram: dict[int, int] = {}
    in_distribution = False
    for line in output.splitlines():
        if "Latency Distribution" in line:
            in_distribution = True
            continue
        if in_distribution and (match := _PERCENTILE.match(line)):
            value = float(match.group(2)) * _UNITS[match.group(3)]
            latency[match.group(1).removesuffix(".0")] = round(value, 4)
            continue
        in_distribution = False
        if match := _RATE.match(line):
            rate = float(match.group(1))
        elif match := _TOTAL.match(line):
            total = int(match.group(1))
            seconds = float(match.group(2)) * _UNITS[match.group(3)] / 1e3
        elif match := _SOCKET.search(line):
            sockets = dict(
                zip(("connect", "read", "write", "timeout"), map(int, match.groups()), strict=True)
            )
        elif match := _STATUS.match(line):
            statuses[int(match.group(1))] = int(match.group(2))
        elif match := _LATENCY.match(line):
            histogram[int(match.group(1))] = int(match.group(2))
        elif line.startswith("BENCH_SAMPLE "):
            sample = line.removeprefix("BENCH_SAMPLE ")
    if rate is None or "50" not in latency or "99" not in latency:
        raise WrkError(f"cannot read wrk's report:\n{output}")
    return WrkResult(rate, total, seconds, latency, statuses, sockets, sample, histogram)


def pooled(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """Several runs' histograms as one: every request of them."""
    total: Counter[int] = Counter()
    for histogram in histograms:
        total.update(histogram)
    return dict(total)


def percentile_ms(histogram: Mapping[int, int], percent: float) -> float:
    """The latency (ms) at ``percent`` of the requests in ``histogram``, ranked as wrk
    ranks them (the smallest latency at or above which ``percent`` of them lie)."""
    count = sum(histogram.values())
    if count == 0:
        raise ValueError("no requests")
    # wrk: rank = round(p / 100 * count + 0.5), C's round (halves away from zero)
    rank = min(count, math.floor(percent / 100 * count + 1.0))
    seen = 0
    for micros in sorted(histogram):
        seen += histogram[micros]
        if seen >= rank:
            return round(micros / 1000, 3)
    raise AssertionError("unreachable: the ranks end at count")


def version() -> str:
    """``wrk``'s version line (it prints it with the usage, exiting 1)."""
    try:
        done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    except FileNotFoundError:  # a report of a run that needs no wrk (bench.watcher)
        return "not installed"
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" [", 1)[0].strip() if first else "unknown"
