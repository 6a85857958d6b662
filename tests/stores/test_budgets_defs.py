"""Contract tests of budget definitions and batched window reads, run against every backend."""

from __future__ import annotations

import dataclasses

import pytest

from proxy.stores import Store
from proxy.stores.records import Budget, BudgetScope
from tests.stores.helpers import T0

DAY = T0
MONTH = T0 - 10 * 86_400


def budget(**fields: object) -> Budget:
    """A team budget with plausible defaults; ``fields`` override any of them."""
    base = Budget(
        name="growth-daily",
        scope="team",
        subject="growth",
        window="day",
        limit_micros=50_000_000,
        hard=True,
        created_at=T0,
        updated_at=T0,
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


async def test_put_budget_round_trips_and_lists_by_name(store: Store) -> None:
    """Stored budgets read back exactly and are listed ordered by name."""
    first = budget(name="zeta", scope="global", subject=None, window="lifetime", hard=False)
    second = budget(name="alpha", scope="key", subject="vk_1", window="month", limit_micros=0)
    assert await store.put_budget(first) == first
    assert await store.put_budget(second) == second
    assert await store.list_budgets() == [second, first]


async def test_put_budget_upsert_keeps_created_at(store: Store) -> None:
    """Replacing a budget updates every field but keeps the original created_at."""
    await store.put_budget(budget())
    changed = budget(
        scope="project", subject="ads", window="month", limit_micros=7, hard=False,
        created_at=T0 + 500, updated_at=T0 + 500,
    )  # fmt: skip
    stored = await store.put_budget(changed)
    assert stored == dataclasses.replace(changed, created_at=T0)
    assert await store.list_budgets() == [stored]


async def test_delete_budget_reports_whether_it_existed(store: Store) -> None:
    """Deleting a budget removes it once; deleting an unknown name returns False."""
    await store.put_budget(budget(name="a"))
    await store.put_budget(budget(name="b"))
    assert await store.delete_budget("a")
    assert not await store.delete_budget("a")
    assert not await store.delete_budget("missing")
    assert [b.name for b in await store.list_budgets()] == ["b"]


@pytest.mark.parametrize(
    "fields",
    [
        {"scope": "global", "subject": "growth"},
        {"scope": "team", "subject": None},
        {"limit_micros": -1},
        {"scope": "org"},
        {"window": "week"},
    ],
)
async def test_put_budget_refuses_inconsistent_definitions(
    store: Store, fields: dict[str, object]
) -> None:
    """A subject not matching the scope, a negative limit or an unknown scope/window is refused."""
    with pytest.raises(ValueError, match="budget"):
        await store.put_budget(budget(**fields))
    assert await store.list_budgets() == []


async def test_budget_windows_reads_many_pairs_at_once(store: Store) -> None:
    """Existing windows come back keyed by (scope_key, window_start); missing pairs are absent."""
    await store.budget_reserve(
        [BudgetScope("budget:a", DAY, 10_000), BudgetScope("budget:g", MONTH, 90_000)], 4_000
    )
    await store.budget_reserve([BudgetScope("budget:a", DAY + 86_400, 10_000)], 1_000)
    wanted = [("budget:a", DAY), ("budget:g", MONTH), ("budget:a", DAY + 86_400)]
    missing = [("budget:a", MONTH), ("budget:none", DAY)]
    windows = await store.budget_windows([*wanted, *missing, ("budget:a", DAY)])
    assert set(windows) == set(wanted)
    for key, start in wanted:
        assert windows[(key, start)] == await store.budget_window(key, start)
    assert windows[("budget:g", MONTH)].reserved_micros == 4_000
    assert await store.budget_windows([]) == {}


async def test_budget_windows_handles_more_pairs_than_one_statement(store: Store) -> None:
    """Asking for thousands of pairs still finds the few that exist."""
    await store.budget_reserve([BudgetScope("budget:x", DAY, 5)], 1)
    await store.budget_reserve([BudgetScope("budget:y", MONTH, 5)], 2)
    pairs = [(f"budget:{i}", DAY) for i in range(2_500)]
    windows = await store.budget_windows([*pairs, ("budget:x", DAY), ("budget:y", MONTH)])
    assert {k: w.reserved_micros for k, w in windows.items()} == {
        ("budget:x", DAY): 1,
        ("budget:y", MONTH): 2,
    }
