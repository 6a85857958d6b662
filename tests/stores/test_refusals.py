"""Contract tests of the refusals ledger, run against every backend."""

from __future__ import annotations

import pytest

from proxy.stores import Store
from proxy.stores.records import Refusal, RefusalGroupKey, RefusalRow
from tests.stores.helpers import T0

NEXT_DAY = T0 + 86_400


async def _seed(store: Store) -> None:
    """Five refusals over two UTC days, two teams and two reasons, one unpriced."""
    for refusal in (
        Refusal(at=T0, reason="budget", caller="fp:1", team="a", project="p", model="m1",
                estimated_cost_micros=1_000),
        Refusal(at=T0 + 10, reason="budget", team="a", model="m1", estimated_cost_micros=2_000),
        Refusal(at=T0 + 20, reason="concurrency", team="b", model="m2"),
        Refusal(at=NEXT_DAY - 0.5, reason="budget", team="b", model="m2",
                estimated_cost_micros=4_000),
        Refusal(at=NEXT_DAY, reason="expired_key", estimated_cost_micros=8_000),
    ):  # fmt: skip
        await store.record_refusal(refusal)


async def test_refusal_summary_totals_without_grouping(store: Store) -> None:
    """Without group_by one row counts every refusal in range and sums estimates (NULL as 0)."""
    await _seed(store)
    assert await store.refusal_summary(T0, NEXT_DAY + 1) == [
        RefusalRow(refusals=5, avoided_micros=15_000)
    ]


async def test_refusal_summary_range_is_half_open(store: Store) -> None:
    """Refusals at ``until`` are excluded and at ``since`` included; an empty range has no rows."""
    await _seed(store)
    assert await store.refusal_summary(T0, NEXT_DAY) == [
        RefusalRow(refusals=4, avoided_micros=7_000)
    ]
    assert await store.refusal_summary(T0 - 100, T0) == []


async def test_refusal_summary_groups_by_day_team_and_reason(store: Store) -> None:
    """Grouping by day, team and reason splits rows by UTC day and orders them by the keys."""
    await _seed(store)
    rows = await store.refusal_summary(T0, NEXT_DAY + 1, ["reason", "team", "day"])
    assert rows == [
        RefusalRow(day="2026-01-01", team="a", reason="budget", refusals=2, avoided_micros=3_000),
        RefusalRow(day="2026-01-01", team="b", reason="budget", refusals=1, avoided_micros=4_000),
        RefusalRow(day="2026-01-01", team="b", reason="concurrency", refusals=1),
        RefusalRow(day="2026-01-02", reason="expired_key", refusals=1, avoided_micros=8_000),
    ]


async def test_refusal_summary_status_is_an_alias_of_reason(store: Store) -> None:
    """Grouping by 'status' gives the same rows as grouping by 'reason', None keys last."""
    await _seed(store)
    by_status = await store.refusal_summary(T0, NEXT_DAY + 1, ["model", "status"])
    assert by_status == await store.refusal_summary(T0, NEXT_DAY + 1, ["model", "reason"])
    assert [(r.model, r.reason, r.refusals) for r in by_status] == [
        ("m1", "budget", 2),
        ("m2", "budget", 1),
        ("m2", "concurrency", 1),
        (None, "expired_key", 1),
    ]


async def test_refusal_summary_refuses_unknown_group_keys(store: Store) -> None:
    """An unknown group key raises ValueError."""
    bad: list[RefusalGroupKey] = ["caller"]  # type: ignore[list-item]
    with pytest.raises(ValueError, match="group_by"):
        await store.refusal_summary(T0, NEXT_DAY, bad)
