"""Contract tests of write-ahead submit intents and dead-replica recovery, on every backend."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from proxy.stores import Store
from proxy.stores.base import HoldLostError
from proxy.stores.records import (
    BudgetScope,
    ClaimOutcome,
    Intent,
    JobStatus,
    StoredResponse,
    unknown_task_id,
)
from tests.stores.helpers import T0, new_job

LEASE = 30.0
SCOPE = BudgetScope("team:a", T0, 10_000_000)


async def _intent(
    store: Store, intent_id: str, owner: str, *, at: float = T0, key: str | None = "k1"
) -> Intent:
    """Reserve money and a slot and claim a key as the pipeline does, then write the intent."""
    money = await store.budget_reserve(
        [SCOPE], 1_000_000, reservation_id=f"job:{intent_id}", owner=owner, at=at
    )
    slot = await store.budget_reserve(
        [BudgetScope("jobs:vk1", 0.0, 10)],
        1,
        reservation_id=f"slot:{intent_id}",
        owner=owner,
        at=at,
    )
    assert money.ok
    assert slot.ok
    if key is not None:
        claim = await store.claim("vk:1", key, "fp", at)
        assert claim.outcome is ClaimOutcome.NEW
    intent = Intent(
        intent_id=intent_id,
        owner=owner,
        created_at=at,
        job=new_job(
            unknown_task_id(intent_id),
            reservation_id=f"job:{intent_id}",
            slot_reservation_id=f"slot:{intent_id}",
            next_poll_at=None,
        ),
        idempotency_scope="vk:1" if key else None,
        idempotency_key=key,
        reservation_id=f"job:{intent_id}",
        slot_reservation_id=f"slot:{intent_id}",
    )
    await store.open_intent(intent)
    return intent


async def _held(store: Store, key: str, start: float) -> int:
    window = await store.budget_window(key, start)
    return 0 if window is None else window.reserved_micros


async def test_intent_becomes_the_job_in_one_step(store: Store) -> None:
    """Recording the task removes the intent, keeps the money held and completes the key."""
    intent = await _intent(store, "i1", "replica-a")
    job = dataclasses.replace(intent.job, task_id="task-1", next_poll_at=T0 + 15)
    answer = StoredResponse(status=200, body=b'{"code":0}', task_id="task-1")
    recorded = await store.intent_to_job(intent, job, answer)
    assert recorded.task_id == "task-1"
    assert recorded.slot_reservation_id == "slot:i1"
    assert await store.list_intents() == []
    assert await _held(store, "team:a", T0) == 1_000_000
    replay = await store.claim("vk:1", "k1", "fp", T0 + 1)
    assert replay.outcome is ClaimOutcome.REPLAY
    # A second write of the same outcome (a retry after an error) changes nothing.
    again = await store.intent_to_job(intent, job, answer)
    assert again.task_id == "task-1"
    # Nothing is held by a replica any more: a sweep by anyone releases nothing.
    swept = await store.recover("replica-b", T0 + 10 * LEASE, LEASE)
    assert swept.reservations_released == 0
    assert await _held(store, "team:a", T0) == 1_000_000


async def test_unknown_outcome_keeps_money_frees_slot_and_blocks_the_key(store: Store) -> None:
    """Sent without an answer: an unknown record holds the money; the key answers unknown."""
    intent = await _intent(store, "i2", "replica-a")
    record = await store.intent_to_unknown(intent, "connection reset")
    assert record is not None
    assert record.task_id == "unknown:i2"
    assert record.status is JobStatus.UNKNOWN
    assert await _held(store, "team:a", T0) == 1_000_000
    assert await _held(store, "jobs:vk1", 0.0) == 0
    claim = await store.claim("vk:1", "k1", "fp", T0 + 1)
    assert claim.outcome is ClaimOutcome.UNKNOWN
    assert claim.task_id == "unknown:i2"
    assert await store.intent_to_unknown(intent, "again") is None


async def test_release_frees_everything_and_replays_a_definite_refusal(store: Store) -> None:
    """A definite refusal releases money and slot; its answer is replayed for the key."""
    intent = await _intent(store, "i3", "replica-a")
    refusal = StoredResponse(status=400, body=b'{"code":400}')
    assert await store.intent_release(intent, refusal, complete=True)
    assert await _held(store, "team:a", T0) == 0
    assert await _held(store, "jobs:vk1", 0.0) == 0
    assert (await store.claim("vk:1", "k1", "fp", T0 + 1)).outcome is ClaimOutcome.REPLAY
    other = await _intent(store, "i4", "replica-a", key="k2")
    assert await store.intent_release(other, None, complete=False)
    assert (await store.claim("vk:1", "k2", "fp", T0 + 1)).outcome is ClaimOutcome.NEW


async def test_dead_replicas_intents_become_unknown_and_their_holds_are_released(
    store: Store,
) -> None:
    """A replica whose heartbeat stopped: intents to unknown records, request holds released."""
    await store.heartbeat("dead", T0)
    await store.heartbeat("alive", T0)
    await _intent(store, "i5", "dead")
    # A request of the dead replica that held money but never wrote its intent.
    await store.budget_reserve([SCOPE], 500_000, reservation_id="job:orphan", owner="dead", at=T0)
    await _intent(store, "i6", "alive", key="k3")
    await store.heartbeat("alive", T0 + 2 * LEASE)
    found = await store.recover("alive", T0 + 2 * LEASE, LEASE)
    assert [j.task_id for j in found.unknown] == ["unknown:i5"]
    assert found.reservations_released == 1  # the orphan; i5's slot was freed with its record
    assert [i.intent_id for i in await store.list_intents()] == ["i6"]
    # i5's money is held by its unknown record, i6's by the live replica.
    assert await _held(store, "team:a", T0) == 2_000_000
    assert await _held(store, "jobs:vk1", 0.0) == 1
    assert (await store.recover("alive", T0 + 2 * LEASE, LEASE)).unknown == ()


async def test_a_live_replica_is_never_swept(store: Store) -> None:
    """Intents and holds of a replica that keeps beating are left alone, however old."""
    await store.heartbeat("busy", T0)
    await _intent(store, "i7", "busy")
    await store.heartbeat("busy", T0 + 10 * LEASE)
    found = await store.recover("other", T0 + 10 * LEASE + 1, LEASE)
    assert found.unknown == ()
    assert found.reservations_released == 0


async def test_a_job_recorded_late_replaces_the_unknown_record(store: Store) -> None:
    """A replica taken for dead during a stall still records its task: no double entry."""
    intent = await _intent(store, "i8", "slow")
    found = await store.recover("other", T0 + 2 * LEASE, LEASE)
    assert [j.task_id for j in found.unknown] == ["unknown:i8"]
    job = dataclasses.replace(intent.job, task_id="task-8")
    await store.intent_to_job(intent, job, None)
    assert await store.get_job("unknown:i8") is None
    recorded = await store.get_job("task-8")
    assert recorded is not None
    assert recorded.reservation_id == "job:i8"


async def test_two_sweepers_take_each_intent_once(store: Store, replica: Store) -> None:
    """Replicas sweeping at once: every dead intent becomes exactly one unknown record."""
    for n in range(6):
        await _intent(store, f"r{n}", "dead", key=f"key-{n}")
    a, b = await asyncio.gather(
        store.recover("x", T0 + 2 * LEASE, LEASE), replica.recover("y", T0 + 2 * LEASE, LEASE)
    )
    ids = sorted(j.task_id for j in (*a.unknown, *b.unknown))
    assert ids == sorted(f"unknown:r{n}" for n in range(6))
    assert await _held(store, "team:a", T0) == 6_000_000
    assert await _held(store, "jobs:vk1", 0.0) == 0


async def test_closed_reservations_are_purged_open_ones_kept(store: Store) -> None:
    """Retention deletes settled/released reservations past the cutoff, never open ones."""
    for n in range(5):
        await store.budget_reserve([SCOPE], 1_000, reservation_id=f"old-{n}", at=T0)
    await store.budget_reserve([SCOPE], 1_000, reservation_id="recent", at=T0 + 100)
    await store.budget_release("old-0")
    await store.budget_settle("old-1", 1_000)
    await store.budget_release("recent")
    assert await store.purge_closed_reservations(T0 + 50, limit=1) == 1
    assert await store.purge_closed_reservations(T0 + 50, limit=10) == 1
    assert await store.purge_closed_reservations(T0 + 50, limit=10) == 0
    held = {h.reservation_id for h in await store.open_reservations()}
    assert held == {"old-2", "old-3", "old-4"}
    assert await _held(store, "team:a", T0) == 3_000


async def test_an_intent_is_refused_once_its_holds_were_released(store: Store) -> None:
    """A replica taken for dead loses its holds; its late intent then may not be written."""
    await store.heartbeat("slow", T0)
    await store.budget_reserve([SCOPE], 1_000, reservation_id="job:late", owner="slow", at=T0)
    await store.claim("vk:1", "k-late", "fp", T0, claim_id="late", owner="slow")
    found = await store.recover("other", T0 + 2 * LEASE, LEASE)
    assert found.reservations_released == 1
    assert found.claims_released == 1
    intent = Intent(
        intent_id="late",
        owner="slow",
        created_at=T0 + 2 * LEASE,
        job=new_job("unknown:late", reservation_id="job:late"),
        idempotency_scope="vk:1",
        idempotency_key="k-late",
        reservation_id="job:late",
    )
    with pytest.raises(HoldLostError):
        await store.open_intent(intent)
    assert await store.list_intents() == []
    # Another request's claim of the same key is not this one's either.
    await store.claim("vk:1", "k-late", "fp", T0 + 2 * LEASE, claim_id="newer", owner="other")
    fresh = await store.budget_reserve([SCOPE], 1_000, reservation_id="job:late2", at=T0)
    assert fresh.ok
    with pytest.raises(HoldLostError, match="claim"):
        await store.open_intent(dataclasses.replace(intent, reservation_id="job:late2"))
