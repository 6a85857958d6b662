"""An open-loop load generator: requests leave on a fixed schedule, whatever the answers do.

Run: ``python -m bench.openloop --base URL --paths FILE --rate 1000 --seconds 5``
(``bench.run`` starts it, pinned to the load generator's core). Request ``i`` is due at
``start + i / rate`` and its latency counts from that moment (no coordinated omission: a
slow answer delays nothing else, and a late start counts against the server). Prints one
JSON object: scheduled, completed, failed, achieved rate, latency percentiles in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

MAX_IN_FLIGHT = 4096


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def drive(
    base: str, paths: Sequence[str], rate: float, seconds: float, auth: str, connections: int
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    failed = 0
    total = int(rate * seconds)
    connector = TCPConnector(limit=connections)
    timeout = ClientTimeout(total=30)
    headers = {"Authorization": auth}
    async with ClientSession(base, connector=connector, timeout=timeout) as session:

        async def one(path: str, due: float) -> None:
            nonlocal failed
            try:
                async with session.get(path, headers=headers) as answer:
                    await answer.read()
                    key = str(answer.status)
                    statuses[key] = statuses.get(key, 0) + 1
            except (ClientError, TimeoutError):
                failed += 1
                return
            latencies.append(time.perf_counter() - due)

        start = time.perf_counter() + 0.05
        skipped = 0
        in_flight = 0

        async def tracked(path: str, due: float) -> None:
            nonlocal in_flight
            try:
                await one(path, due)
            finally:
                in_flight -= 1

        async with asyncio.TaskGroup() as group:
            for i in range(total):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0.0005:
                    await asyncio.sleep(delay)
                if in_flight >= MAX_IN_FLIGHT:  # the server has fallen far behind: shed
                    skipped += 1
                    continue
                in_flight += 1
                group.create_task(tracked(paths[i % len(paths)], due))
            scheduled_end = start + total / rate
        finished = time.perf_counter()
    latencies.sort()
    completed = len(latencies)
    return {
        "target_rate": rate,
        "scheduled": total,
        "completed": completed,
        "failed": failed,
        "shed": skipped,
        "statuses": statuses,
        "achieved_rate": round(completed / max(finished - start, scheduled_end - start), 1),
        "latency_ms": {
            q: round(1000 * percentile(latencies, float(q)), 3) for q in ("50", "90", "99")
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--paths", type=Path, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--auth", default="Bearer bench-key")
    parser.add_argument("--connections", type=int, default=256)
    args = parser.parse_args(argv)
    paths = [p for p in args.paths.read_text(encoding="utf-8").splitlines() if p]
    work = drive(args.base, paths, args.rate, args.seconds, args.auth, args.connections)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(work)
    else:
        result = uvloop.run(work)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
