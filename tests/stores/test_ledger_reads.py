"""Finance reads of the ledger (``LedgerReadStore``), run against every backend: aggregates
equal what loading every job and counting in Python gives, and pages cover each terminal
job once, in order, across page boundaries with equal submit times."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest

from bench.ledger import seed
from proxy.governance import report
from proxy.stores import Store, open_store
from proxy.stores.records import REPORT_KEYS, JobStatus, ReportKey
from tests.stores.helpers import T0, new_job

JOBS = 3000
NOW = T0 + 40 * 86400


def _ref_percentile(values: list[int], q: float) -> int | None:
    """The previous, in-memory definition: nearest rank by float arithmetic."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _key(job: dict[str, Any], group_by: list[ReportKey]) -> tuple[Any, ...]:
    at = float(job["submitted_at"])
    day = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")
    values = {"day": day, "week": report.week_of(day), "team": job["team"],
              "project": job["project"], "model": job["pinned_slug"],
              "api": job["api"]}  # fmt: skip
    return tuple(values[k] for k in group_by)


@pytest.fixture
async def seeded(store_url: str) -> Store:
    await seed(store_url, JOBS, days=30, now=NOW)
    return await open_store(store_url)


async def _all_jobs(store: Store) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await store.list_jobs(limit=1000, after=cursor)
        jobs.extend(
            {"submitted_at": j.submitted_at, "team": j.team, "project": j.project,
             "pinned_slug": j.pinned_slug, "alias": j.alias, "status": j.status,
             "estimated": j.estimated_cost_micros, "final": j.final_cost_micros,
             "task_id": j.task_id, "api": j.api}
            for j in page.jobs
        )  # fmt: skip
        cursor = page.next_cursor
        if cursor is None:
            return jobs


@pytest.mark.parametrize(
    "group_by",
    [["day", "team", "model"], ["week", "model"], ["team", "project"], ["model", "api"], []],
)
async def test_report_groups_equal_the_in_memory_count(
    seeded: Store, group_by: list[ReportKey]
) -> None:
    """Counts, sums, P50/P95 and aliases per group equal those of every job loaded."""
    store = seeded
    try:
        jobs = await _all_jobs(store)
        assert len(jobs) == JOBS
        expected: dict[tuple[Any, ...], dict[str, Any]] = {}
        costs: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for job in jobs:
            key = _key(job, group_by)
            blank = {"jobs": 0, "succeeded": 0, "failed": 0, "estimated": 0, "final": 0}
            g = expected.setdefault(key, {**blank, "aliases": set()})
            g["jobs"] += 1
            g["estimated"] += job["estimated"] or 0
            g["final"] += job["final"] or 0
            if job["status"] is JobStatus.SUCCESS:
                g["succeeded"] += 1
                costs[key].append(job["final"])
            elif job["status"] in (JobStatus.FAILED, JobStatus.EXPIRED):
                g["failed"] += 1
            if job["alias"] and job["alias"] != job["pinned_slug"]:
                g["aliases"].add(job["alias"])
        groups = await store.report_groups(0, NOW + 1, group_by)
        got = {tuple(getattr(g, k) for k in group_by): g for g in groups}
        assert set(got) == set(expected)
        for key, group in got.items():
            want = expected[key]
            assert (group.jobs, group.succeeded, group.failed) == (
                want["jobs"],
                want["succeeded"],
                want["failed"],
            )
            assert (group.estimated_cost_micros, group.final_cost_micros) == (
                want["estimated"],
                want["final"],
            )
            assert group.p50_micros == _ref_percentile(costs[key], 0.5)
            assert group.p95_micros == _ref_percentile(costs[key], 0.95)
            assert group.aliases == tuple(sorted(want["aliases"]))
        spend = await store.spend_summary(0, NOW + 1)
        assert sum(g.final_cost_micros for g in groups) == spend[0].final_cost_micros
    finally:
        await store.close()


async def test_ledger_pages_cover_each_terminal_job_once_in_order(store: Store) -> None:
    """Pages hold terminal jobs only, oldest first, ties on submit time split across pages."""
    for i in range(7):  # equal submit times: the task id orders them
        await store.insert_job(new_job(f"tie/{i}", submitted_at=T0 + 10))
        await store.observe(f"tie/{i}", "success", T0 + 20, final_cost_micros=100 + i)
    await store.insert_job(new_job("open/1", submitted_at=T0 + 5))
    await store.insert_job(new_job("early/1", submitted_at=T0 + 1))
    await store.observe("early/1", "failed", T0 + 30)
    await store.insert_job(new_job("late/1", submitted_at=T0 + 99))
    await store.observe("late/1", "success", T0 + 130, final_cost_micros=5)
    pages = [page async for page in store.ledger_pages(T0, T0 + 99, page_size=3)]
    assert [len(p) for p in pages] == [3, 3, 2]
    ids = [row.task_id for page in pages for row in page]
    assert ids == ["early/1", *(f"tie/{i}" for i in range(7))]
    assert pages[1][0].final_cost_micros == 102
    assert [page async for page in store.ledger_pages(T0 + 200, T0 + 300)] == []


async def test_cost_quantiles_by_model_and_merged(store: Store) -> None:
    """P50/P95 per model in SQL; models merged report together as ``None``."""
    for i, (slug, cost) in enumerate(
        [("a/x", 1), ("a/x", 2), ("a/x", 3), ("b/y", 10), ("c/z", 20), ("c/z", 30)]
    ):
        await store.insert_job(new_job(f"q/{i}", pinned_slug=slug, submitted_at=T0 + i))
        await store.observe(f"q/{i}", "success", T0 + 50, final_cost_micros=cost)
    got = {q.model: (q.jobs, q.p50_micros, q.p95_micros) for q in
           await store.cost_quantiles(T0, T0 + 60)}  # fmt: skip
    assert got == {"a/x": (3, 2, 3), "b/y": (1, 10, 10), "c/z": (2, 20, 30)}
    assert await store.costed_models(T0, T0 + 60) == ["a/x", "b/y", "c/z"]
    merged = {q.model: (q.jobs, q.p50_micros) for q in
              await store.cost_quantiles(T0, T0 + 60, merge=["b/y", "c/z"])}  # fmt: skip
    assert merged == {"a/x": (3, 2), None: (3, 20)}


def test_report_keys_cover_the_store_keys() -> None:
    assert REPORT_KEYS == ("day", "week", "account", "team", "project", "model", "api")
    assert time.time() > T0
