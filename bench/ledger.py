"""A month of ledger, made fast: terminal jobs inserted in bulk into a SQLite or PostgreSQL store.

``seed(url, jobs)`` migrates the store (``proxy.stores.open_store``), then writes ``jobs``
terminal jobs submitted evenly over the last ``days`` days, in one transaction (SQLite:
``executemany``; PostgreSQL: ``COPY``), about 300,000 rows in 5-10 s. The rows are those a
submit and its polls write (history, output URL, costs, team, project, model, alias,
correlation id); deterministic for a given ``seed_value``. 85 % succeed (at one of a few
prices per model), 10 % fail (a fifth of those billed), 5 % expire.

Run: ``python -m bench.ledger URL [--jobs 300000] [--days 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import time
from collections.abc import Iterator

import asyncpg

from proxy.jsoncodec import dumps_record
from proxy.stores import open_store, sqlite_path

COLUMNS = (
    "task_id", "caller", "team", "project", "alias", "pinned_slug", "input_hash",
    "correlation_id", "request_id", "price_table_version", "estimated_cost_micros",
    "final_cost_micros", "status", "upstream_attempts", "submitted_by", "submitted_at",
    "first_processing_at", "terminal_at", "history", "last_seen_status", "client_polls",
    "watcher_polls", "output_urls", "error_reason",
)  # fmt: skip
MODELS = (  # pinned slug, alias clients use (or None), prices in micro-dollars
    ("minimax/hailuo-02-t2v", "minimax/hailuo", (324_000, 540_000, 720_000)),
    ("minimax/hailuo-02-i2v", None, (324_000, 540_000)),
    ("bytedance/seedance-1-pro-t2v", "bytedance/seedance", (250_000, 500_000, 1_500_000)),
    ("kling/kling-v2-1-master-t2v", None, (1_400_000, 2_800_000)),
    ("wan/wan-2-2-t2v", "wan/latest", (100_000, 200_000)),
    ("google/veo-3-fast", None, (1_200_000, 3_200_000)),
)
TEAMS = ("studio", "growth", "ads", "research", "mobile", "web", "brand", "ops")
PROJECTS = ("trailer", "launch", "social", "catalog", None)


def rows(jobs: int, days: float, now: float, seed_value: int = 7) -> Iterator[tuple[object, ...]]:
    """``jobs`` terminal job rows submitted evenly over ``days`` days before ``now``."""
    rng = random.Random(seed_value)
    span = days * 86400.0
    start = now - span
    for i in range(jobs):
        slug, alias, prices = MODELS[rng.randrange(len(MODELS))]
        team = TEAMS[rng.randrange(len(TEAMS))]
        project = PROJECTS[rng.randrange(len(PROJECTS))]
        at = start + span * (i + rng.random()) / jobs
        estimate = prices[rng.randrange(len(prices))]
        roll = rng.random()
        processing = at + rng.uniform(2, 20)
        end = processing + rng.uniform(30, 600)
        urls: list[str] = []
        error = None
        if roll < 0.85:
            status, final = "success", estimate
            urls = [f"https://cdn.modellix.example/results/{i:08x}/video.mp4?sig={i * 7919:x}"]
        elif roll < 0.95:
            status, final = "failed", estimate if rng.random() < 0.2 else 0
            error = "generation failed: content policy"
        else:
            status, final = "expired", None
        history = [["pending", at, "submit"], ["processing", processing, "watcher"]]
        history.append([status, end, "expiry" if status == "expired" else "watcher"])
        typed = alias if alias is not None and rng.random() < 0.5 else None
        yield (
            f"seed-{i:07d}", f"vk:key-{team}", team, project, typed,
            slug, f"sha256:{i:016x}", f"corr-{i:08x}", f"req-{i:08x}", "2026-11",
            estimate, final, status, 1, "replica-a", at, processing, end,
            dumps_record(history), status, rng.randrange(0, 4), rng.randrange(2, 12),
            dumps_record(urls), error,
        )  # fmt: skip


async def seed(
    url: str, jobs: int, *, days: float = 30.0, now: float | None = None, seed_value: int = 7
) -> float:
    """Migrate the store at ``url`` and insert the jobs; seconds the insert took."""
    store = await open_store(url)
    await store.close()
    made = rows(jobs, days, time.time() if now is None else now, seed_value)
    started = time.perf_counter()
    if url.startswith("sqlite:"):
        await asyncio.to_thread(_sqlite_insert, sqlite_path(url), made)
    else:
        conn = await asyncpg.connect(url)
        try:
            await conn.copy_records_to_table("jobs", records=made, columns=list(COLUMNS))
            await conn.execute("ANALYZE jobs")
        finally:
            await conn.close()
    return time.perf_counter() - started


def _sqlite_insert(path: str, made: Iterator[tuple[object, ...]]) -> None:
    marks = ", ".join("?" for _ in COLUMNS)
    sql = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({marks})"  # noqa: S608
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, made)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url", help="sqlite:///path.db or postgresql://...")
    parser.add_argument("--jobs", type=int, default=300_000)
    parser.add_argument("--days", type=float, default=30.0)
    args = parser.parse_args(argv)
    took = asyncio.run(seed(args.url, args.jobs, days=args.days))
    print(f"{args.jobs} jobs in {took:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
