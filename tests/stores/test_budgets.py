"""Contract tests of budget reservations and virtual keys, run against every backend."""

from __future__ import annotations

import asyncio

import pytest

from proxy.stores import DuplicateKeyError, Store
from proxy.stores.records import BudgetScope, ReserveResult, VirtualKey
from tests.stores.helpers import T0

DAY = T0
MONTH = T0 - 10 * 86_400


async def test_reserve_holds_in_every_scope(store: Store) -> None:
    """A reservation that fits holds its amount in every scope it names."""
    scopes = [BudgetScope("team:a", DAY, 10_000), BudgetScope("global", MONTH, 1_000_000)]
    result = await store.budget_reserve(scopes, 4_000, reservation_id="r1")
    assert result.ok
    assert result.reservation is not None
    assert result.reservation.reservation_id == "r1"
    for key, start in (("team:a", DAY), ("global", MONTH)):
        window = await store.budget_window(key, start)
        assert window is not None
        assert (window.reserved_micros, window.spent_micros) == (4_000, 0)


async def test_refusal_names_the_scope_and_holds_nothing(store: Store) -> None:
    """If one scope lacks room, nothing is held anywhere and that scope is reported."""
    await store.budget_reserve([BudgetScope("team:a", DAY, 10_000)], 8_000)
    scopes = [BudgetScope("global", DAY, 1_000_000), BudgetScope("team:a", DAY, 10_000)]
    result = await store.budget_reserve(scopes, 3_000)
    assert not result.ok
    assert result.refused is not None
    assert result.refused.scope_key == "team:a"
    assert result.refused.remaining_micros == 2_000
    assert await store.budget_window("global", DAY) is None
    ok = await store.budget_reserve(scopes, 2_000)
    assert ok.ok
    window = await store.budget_window("global", DAY)
    assert window is not None
    assert window.reserved_micros == 2_000


async def test_settle_and_release_move_money_once(store: Store) -> None:
    """Settling turns a hold into spend, releasing returns it, and neither happens twice."""
    scope = BudgetScope("team:a", DAY, 10_000)
    await store.budget_reserve([scope], 5_000, reservation_id="settle")
    await store.budget_reserve([scope], 3_000, reservation_id="release")
    assert await store.budget_settle("settle", 4_200)
    assert not await store.budget_settle("settle", 4_200)
    assert await store.budget_release("release")
    assert not await store.budget_release("release")
    assert not await store.budget_release("missing")
    window = await store.budget_window("team:a", DAY)
    assert window is not None
    assert (window.spent_micros, window.reserved_micros, window.remaining_micros) == (
        4_200,
        0,
        5_800,
    )


async def test_concurrent_reservers_never_overshoot(store: Store, replica: Store) -> None:
    """Of 60 concurrent reservations over two replicas, only as many as fit the limits succeed."""
    scopes = [BudgetScope("team:a", DAY, 20_000), BudgetScope("project:x", DAY, 25_000)]

    async def reserve(i: int) -> ReserveResult:
        return await (store if i % 2 else replica).budget_reserve(scopes, 1_000)

    results = await asyncio.gather(*(reserve(i) for i in range(60)))
    assert sum(r.ok for r in results) == 20
    assert {r.refused.scope_key for r in results if r.refused} == {"team:a"}
    team = await store.budget_window("team:a", DAY)
    project = await store.budget_window("project:x", DAY)
    assert team is not None
    assert project is not None
    assert (team.reserved_micros, project.reserved_micros) == (20_000, 20_000)


async def test_virtual_keys_round_trip_and_revoke(store: Store) -> None:
    """Virtual keys are found by hash, listed per team, and revoked once."""
    key = VirtualKey(
        key_id="vk_1",
        key_hash="sha256:aa",
        created_at=T0,
        name="render farm",
        team="growth",
        project="ads",
        upstream_key_ref="primary",
        allowed_models=("minimax/hailuo-02-t2v",),
    )
    assert await store.create_virtual_key(key) == key
    await store.create_virtual_key(
        VirtualKey(key_id="vk_2", key_hash="sha256:bb", created_at=T0 + 1)
    )
    with pytest.raises(DuplicateKeyError):
        await store.create_virtual_key(
            VirtualKey(key_id="vk_3", key_hash="sha256:aa", created_at=T0)
        )
    assert await store.get_virtual_key_by_hash("sha256:aa") == key
    assert await store.get_virtual_key_by_hash("sha256:zz") is None
    assert [k.key_id for k in await store.list_virtual_keys(team="growth")] == ["vk_1"]
    assert await store.revoke_virtual_key("vk_1", T0 + 5)
    assert not await store.revoke_virtual_key("vk_1", T0 + 6)
    revoked = await store.get_virtual_key_by_hash("sha256:aa")
    assert revoked is not None
    assert not revoked.active
    assert [k.key_id for k in await store.list_virtual_keys()] == ["vk_2"]
    assert len(await store.list_virtual_keys(include_revoked=True)) == 2


async def test_virtual_key_expiry_and_concurrency_cap_round_trip(store: Store) -> None:
    """expires_at and max_concurrent_jobs are stored and read back by id, hash and listing."""
    key = VirtualKey(
        key_id="vk_exp",
        key_hash="sha256:ee",
        created_at=T0,
        expires_at=T0 + 3_600.5,
        max_concurrent_jobs=3,
    )
    plain = VirtualKey(key_id="vk_plain", key_hash="sha256:ff", created_at=T0 + 1)
    assert await store.create_virtual_key(key) == key
    assert await store.create_virtual_key(plain) == plain
    assert await store.get_virtual_key("vk_exp") == key
    assert await store.get_virtual_key_by_hash("sha256:ee") == key
    assert await store.list_virtual_keys() == [key, plain]
    assert await store.get_virtual_key("vk_missing") is None
    assert (plain.expires_at, plain.max_concurrent_jobs) == (None, None)
    assert key.usable_at(T0 + 3_600)
    assert not key.usable_at(T0 + 3_600.5)
    await store.revoke_virtual_key("vk_plain", T0 + 2)
    revoked = await store.get_virtual_key("vk_plain")
    assert revoked is not None
    assert revoked.revoked_at == T0 + 2
    assert not revoked.usable_at(T0)


async def test_in_flight_counter_caps_concurrent_jobs(store: Store, replica: Store) -> None:
    """A jobs:<key> scope with amount 1 and limit N admits at most N holders; release frees one."""
    cap = [BudgetScope("jobs:vk_1", 0.0, 5)]

    async def take(i: int) -> ReserveResult:
        return await (store if i % 2 else replica).budget_reserve(cap, 1, reservation_id=f"j{i}")

    first = await asyncio.gather(*(take(i) for i in range(40)))
    holders = [r.reservation.reservation_id for r in first if r.reservation]
    assert len(holders) == 5
    assert all(r.refused and r.refused.remaining_micros == 0 for r in first if not r.ok)
    assert await store.budget_release(holders[0])
    assert await replica.budget_release(holders[1])
    second = await asyncio.gather(*(take(i) for i in range(40, 70)))
    assert sum(r.ok for r in second) == 2
    window = await store.budget_window("jobs:vk_1", 0.0)
    assert window is not None
    assert (window.reserved_micros, window.spent_micros) == (5, 0)
    for rid in holders[2:] + [r.reservation.reservation_id for r in second if r.reservation]:
        assert await store.budget_release(rid)
    window = await store.budget_window("jobs:vk_1", 0.0)
    assert window is not None
    assert window.reserved_micros == 0


async def test_refused_multi_scope_reservation_changes_nothing(store: Store) -> None:
    """A reservation refused by one of several budget scopes leaves every scope as it was."""
    team = BudgetScope("budget:growth-daily", DAY, 10_000)
    glob = BudgetScope("budget:global-monthly", MONTH, 25_000)
    key = BudgetScope("budget:vk-daily", DAY, 50_000)
    assert (await store.budget_reserve([team], 1_000, reservation_id="t")).ok
    assert (await store.budget_reserve([glob], 20_000, reservation_id="g")).ok
    pairs = [(s.scope_key, s.window_start) for s in (team, glob, key)]
    before = await store.budget_windows(pairs)
    refused = await store.budget_reserve([key, team, glob], 6_000, reservation_id="big")
    assert not refused.ok
    assert refused.refused is not None
    assert refused.refused.scope_key == "budget:global-monthly"
    assert await store.budget_windows(pairs) == before
    assert ("budget:vk-daily", DAY) not in before
    assert not await store.budget_release("big")
    assert not await store.budget_settle("big", 1)


async def test_settle_and_release_across_budget_scopes(store: Store) -> None:
    """Settling moves the hold to spend at the final amount in every scope; releasing frees it."""
    scopes = [
        BudgetScope("budget:growth-daily", DAY, 10_000),
        BudgetScope("budget:global-monthly", MONTH, 25_000),
    ]
    assert (await store.budget_reserve(scopes, 3_000, reservation_id="settle")).ok
    assert (await store.budget_reserve(scopes, 2_000, reservation_id="release")).ok
    assert await store.budget_settle("settle", 3_700)
    assert await store.budget_release("release")
    windows = await store.budget_windows([(s.scope_key, s.window_start) for s in scopes])
    assert [(w.spent_micros, w.reserved_micros) for w in windows.values()] == [(3_700, 0)] * 2
    assert windows[("budget:growth-daily", DAY)].remaining_micros == 6_300
    assert windows[("budget:global-monthly", MONTH)].remaining_micros == 21_300


async def test_team_and_global_budgets_hold_under_concurrency(store: Store, replica: Store) -> None:
    """Concurrent reservers over two pools never push any scope's spent+reserved past its limit."""
    glob = BudgetScope("budget:global-daily", DAY, 15_000)
    teams = {t: BudgetScope(f"budget:{t}-daily", DAY, 10_000) for t in ("a", "b")}
    await store.budget_reserve([glob, teams["a"]], 2_000, reservation_id="done")
    await store.budget_settle("done", 2_500)

    async def reserve(i: int) -> ReserveResult:
        scopes = [teams["ab"[i % 2]], glob]
        return await (store if i % 3 else replica).budget_reserve(scopes, 1_000)

    first = await asyncio.gather(*(reserve(i) for i in range(40)))
    assert sum(r.ok for r in first) == 12
    held = [r.reservation.reservation_id for r in first if r.reservation]

    async def finish(i: int, rid: str) -> bool:
        target = store if i % 2 else replica
        return await (target.budget_settle(rid, 600) if i % 3 else target.budget_release(rid))

    results = await asyncio.gather(
        *(finish(i, rid) for i, rid in enumerate(held)), *(reserve(i) for i in range(40, 80))
    )
    assert all(results[: len(held)])
    keys = [(s.scope_key, s.window_start) for s in (glob, *teams.values())]
    windows = await store.budget_windows(keys)
    assert set(windows) == set(keys)
    for window in windows.values():
        assert window.spent_micros + window.reserved_micros <= window.limit_micros
    used = {k[0]: w.spent_micros + w.reserved_micros for k, w in windows.items()}
    assert used[glob.scope_key] == used[teams["a"].scope_key] + used[teams["b"].scope_key]
