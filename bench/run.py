"""Proxy overhead on loopback: the same requests, direct to the upstream and through the proxy.

Run: ``python -m bench.run [--seconds 10] [--warmup 2] [--connections 16] [--pin]``
(``make bench``). About ``8 x (seconds + warmup)`` seconds plus a few of start-up.

It starts the benchmark upstream (``bench.upstream``: the simulator, unlimited and
kept small) and ``modellix-proxy serve`` in front of it, as subprocesses, then for
every scenario runs ``wrk`` against the upstream directly and then through the
proxy, and reports req/s, p50 and p99 of both and their ratios. The figures go to
stdout, ``bench/results/latest.json`` and ``bench/results/latest.md``, with the
machine they came from.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import wrk
from bench.report import machine, markdown, ratios, table
from bench.upstream import KEEP_PROMPT

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
AUTH = "Bearer bench-key"
SUBMIT_PATH = "/api/v1/minimax/hailuo-02-t2v"
SUBMIT_BODY = json.dumps(
    {"prompt": "a red fox running through snow", "duration": 6, "resolution": "768P"}
)
READY_SECONDS = 20.0


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def service(
    name: str,
    argv: Sequence[str],
    *,
    base_url: str,
    ready_path: str,
    workdir: Path,
    env: Mapping[str, str],
    cpus: str | None,
) -> Iterator[Service]:
    """Start ``argv``, wait until ``ready_path`` answers, stop it on the way out."""
    log_path = workdir / f"{name}.log"
    command = ["taskset", "-c", cpus, *argv] if cpus else list(argv)
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=dict(env), stdout=sink, stderr=subprocess.STDOUT
        )
    running = Service(name, process, log_path, base_url)
    try:
        wait_ready(running, ready_path)
        yield running
    finally:
        stop(process)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) so far, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def wait_ready(svc: Service, path: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if svc.process.poll() is not None:
            raise RuntimeError(
                f"{svc.name} exited with {svc.process.returncode}:\n{svc.log_tail()}"
            )
        try:
            status, _ = http("GET", svc.base_url + path, timeout=1.0)
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{svc.name} not ready after {READY_SECONDS}s:\n{svc.log_tail()}")
        time.sleep(0.1)


def proxy_command() -> list[str]:
    script = Path(sys.executable).parent / "modellix-proxy"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "proxy.cli", "serve"]


def proxy_env(port: int, upstream: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELLIX_PROXY_")}
    env.update(
        MODELLIX_PROXY_LISTEN__HOST="127.0.0.1",
        MODELLIX_PROXY_LISTEN__PORT=str(port),
        MODELLIX_PROXY_UPSTREAM__ORIGIN=upstream,
        MODELLIX_PROXY_ADMIN__ENABLED="false",
        MODELLIX_PROXY_STORE__URL=f"sqlite:///{workdir}/bench.db",
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
    headers = {"Authorization": AUTH}
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


# --- scenarios -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    proxy_does: str
    method: str
    path: str
    body: str = ""


def prepare(upstream: str, proxy: str) -> list[Scenario]:
    """Create and pin the tasks the poll scenarios read; check each answers as expected."""
    keep = json.dumps(json.loads(SUBMIT_BODY) | {"prompt": KEEP_PROMPT})
    foreign = submit(upstream, keep)
    pin(upstream, foreign, "done")
    pending = submit(proxy, keep)
    pin(upstream, pending, "pending")
    done = submit(proxy, keep)
    pin(upstream, done, "done")
    expected = {foreign: "success", pending: "pending", done: "success"}
    for task_id, want in expected.items():
        for base in (upstream, proxy):
            got = task_status(base, task_id)
            if got != want:
                raise RuntimeError(f"task {task_id} at {base} is {got!r}, expected {want!r}")
    return [
        Scenario(
            "poll-passthrough",
            "GET task, not the proxy's job (success)",
            "forwards every poll; the job is not in its ledger",
            "GET",
            f"/api/v1/tasks/{foreign}",
        ),
        Scenario(
            "poll-pending",
            "GET task, the proxy's job (pending)",
            "forwards every poll and records the observation in its job ledger",
            "GET",
            f"/api/v1/tasks/{pending}",
        ),
        Scenario(
            "poll-cached",
            "GET task, the proxy's job (success)",
            "answers from its terminal-task cache; the upstream is not asked",
            "GET",
            f"/api/v1/tasks/{done}",
        ),
        Scenario(
            "submit",
            "POST minimax/hailuo-02-t2v",
            "validates, prices and forwards the submit, records the job before answering",
            "POST",
            SUBMIT_PATH,
            SUBMIT_BODY,
        ),
    ]


@dataclass(frozen=True, slots=True)
class Options:
    seconds: float
    warmup: float
    connections: int
    threads: int
    wrk_cpus: str | None


def measure(
    scenario: Scenario, base: str, upstream: Service, proxy: Service, options: Options
) -> tuple[wrk.WrkResult, dict[str, Any]]:
    """One warm-up and one measured wrk run; also what the upstream saw and CPU spent."""
    request = wrk.Request(scenario.method, base + scenario.path, scenario.body, AUTH)
    common = {"connections": options.connections, "threads": options.threads}
    if options.warmup > 0:
        wrk.run(request, seconds=options.warmup, cpus=options.wrk_cpus, **common)
    before = upstream_counts(upstream.base_url)
    cpu_before = {s.name: cpu_seconds(s.process.pid) for s in (upstream, proxy)}
    result = wrk.run(request, seconds=options.seconds, cpus=options.wrk_cpus, **common)
    cpu = {s.name: cpu_seconds(s.process.pid) - cpu_before[s.name] for s in (upstream, proxy)}
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


# --- report ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="taskset: wrk on CPU 0, upstream and proxy on CPU 1 (needs 2+ CPUs)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="SCENARIO",
        help="run only this scenario (repeatable): poll-passthrough, poll-pending, "
        "poll-cached, submit",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        log("wrk is not installed (apt-get install wrk)")
        return 2
    if args.connections < args.threads:
        log("--connections must be at least --threads")
        return 2
    started = time.monotonic()
    load_before = os.getloadavg()
    wrk_cpus, server_cpus = ("0", "1") if args.pin else (None, None)
    options = Options(args.seconds, args.warmup, args.connections, args.threads, wrk_cpus)
    upstream_port, proxy_port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="modellix-bench-") as tmp:
        workdir = Path(tmp)
        upstream_argv = [sys.executable, "-m", "bench.upstream", "--port", str(upstream_port)]
        upstream_env = {k: v for k, v in os.environ.items() if not k.startswith("MODELLIX_")}
        with (
            service(
                "upstream",
                upstream_argv,
                base_url=upstream_url,
                ready_path="/_sim/state",
                workdir=workdir,
                env=upstream_env,
                cpus=server_cpus,
            ) as upstream_service,
            service(
                "proxy",
                proxy_command(),
                base_url=proxy_url,
                ready_path="/healthz",
                workdir=workdir,
                env=proxy_env(proxy_port, upstream_url, workdir),
                cpus=server_cpus,
            ) as proxy_service,
        ):
            scenarios = prepare(upstream_url, proxy_url)
            if args.only:
                unknown = set(args.only) - {s.key for s in scenarios}
                if unknown:
                    log(f"unknown scenario(s): {', '.join(sorted(unknown))}")
                    return 2
                scenarios = [s for s in scenarios if s.key in args.only]
            for scenario in scenarios:
                row: dict[str, Any] = {
                    "key": scenario.key,
                    "title": scenario.title,
                    "proxy_does": scenario.proxy_does,
                    "method": scenario.method,
                    "path": scenario.path,
                }
                measured: dict[str, wrk.WrkResult] = {}
                for side, base in (("direct", upstream_url), ("proxy", proxy_url)):
                    log(f"{scenario.key}: {side} ({args.warmup:g} s warm-up + {args.seconds:g} s)")
                    result, extra = measure(
                        scenario, base, upstream_service, proxy_service, options
                    )
                    measured[side] = result
                    row[side] = result.as_json() | extra
                    if result.non_2xx:
                        log(
                            f"  {result.non_2xx} non-2xx answers {result.statuses}; "
                            f"first: {result.sample_failure}"
                        )
                    log(
                        f"  {result.requests_per_second:.0f} req/s, "
                        f"p50 {result.p50:.2f} ms, p99 {result.p99:.2f} ms, "
                        f"CPU % {extra['cpu_percent']}, upstream saw {extra['upstream_requests']}"
                    )
                    if proxy_service.process.poll() is not None:
                        raise RuntimeError(f"the proxy exited:\n{proxy_service.log_tail()}")
                row["ratios"] = ratios(measured["direct"], measured["proxy"])
                results.append(row)
            proxy_log = proxy_service.log_tail(5)
    report: dict[str, Any] = {
        "finished_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "seconds": args.seconds,
            "warmup": args.warmup,
            "connections": args.connections,
            "threads": args.threads,
            "pinning": "wrk on CPU 0, upstream and proxy on CPU 1" if args.pin else "none",
            "wrk_command": " ".join(
                wrk.command(
                    wrk.Request("GET", "<url>"),
                    seconds=args.seconds,
                    connections=args.connections,
                    threads=args.threads,
                    cpus=wrk_cpus,
                )
            ).replace(str(wrk.SCRIPT), "bench/lua/request.lua"),
            "upstream": "bench.upstream (simulator, fast preset, no concurrency limit)",
            "submit_body": json.loads(SUBMIT_BODY),
        },
        "scenarios": results,
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
