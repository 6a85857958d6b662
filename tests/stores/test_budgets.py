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
