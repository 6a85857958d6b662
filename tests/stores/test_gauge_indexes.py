"""The gauges every replica reads every few seconds are served by indexes (migration 0008).

Checked on SQLite without ANALYZE (the proxy never runs it, so the planner's heuristics
decide): the open-jobs count by model walks the small partial index in group order (no
sort of the open jobs), and the spend by team, project and model over a window reads the
covering index alone.
"""

from __future__ import annotations

import pytest

from proxy.stores import Store
from tests.stores.helpers import T0, new_job, raw_query

IN_FLIGHT = "SELECT pinned_slug, COUNT(*) AS n FROM jobs WHERE terminal_at IS NULL GROUP BY 1"
STALE = "SELECT COUNT(*) AS n FROM jobs WHERE terminal_at IS NULL AND stale"
SPEND = (
    "SELECT team, project, pinned_slug, COUNT(*), SUM(estimated_cost_micros),"
    " SUM(final_cost_micros) FROM jobs WHERE submitted_at >= ? AND submitted_at < ?"
    " GROUP BY 1, 2, 3"
)


async def _plan(store_url: str, sql: str, *args: object) -> list[str]:
    return [str(row[-1]) for row in await raw_query(store_url, "EXPLAIN QUERY PLAN " + sql, *args)]


# SQLite only: PostgreSQL plans by its own statistics (autovacuum's ANALYZE).
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_gauge_queries_read_indexes_only(store: Store, store_url: str) -> None:
    for i in range(20):
        await store.insert_job(new_job(f"open/{i}", submitted_at=T0 + i))
    in_flight = await _plan(store_url, IN_FLIGHT)
    assert in_flight == ["SCAN jobs USING INDEX jobs_open_models"]  # in group order: no sort
    stale = await _plan(store_url, STALE)
    assert all("INDEX jobs_open" in d for d in stale), stale  # a partial index of open jobs
    spend = await _plan(store_url, SPEND, T0, T0 + 100)
    assert any("USING COVERING INDEX jobs_spend (submitted_at>? AND" in d for d in spend), spend
    assert sum((await store.in_flight_by_model()).values()) == 20
