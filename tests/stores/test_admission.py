"""Contract tests of the admission queue's store operations, on every backend."""

from __future__ import annotations

import dataclasses

from proxy.stores import Store
from proxy.stores.admission_records import Admission, Cancel, QueuedSubmit, QueueState
from proxy.stores.records import (
    BudgetScope,
    ClaimOutcome,
    Intent,
    JobStatus,
    StoredResponse,
    unknown_task_id,
)
from tests.stores.helpers import T0, new_job

SCOPE = BudgetScope("global:month", T0, 100_000_000)
CALLER = "vk:a1"


async def _request(
    store: Store, n: int, *, owner: str = "replica-a", account: str | None = None
) -> tuple[Intent, QueuedSubmit]:
    """A submit that passed every stage: money reserved, key claimed; its intent and row."""
    rid = f"req{n}"
    assert (
        await store.budget_reserve(
            [SCOPE], 1_000_000, reservation_id=f"job:{rid}", owner=owner, at=T0
        )
    ).ok
    claim = await store.claim(CALLER, f"key-{n}", "fp", T0, claim_id=rid, owner=owner)
    assert claim.outcome is ClaimOutcome.NEW
    job = new_job(
        unknown_task_id(rid),
        caller=CALLER,
        team="studio",
        reservation_id=f"job:{rid}",
        idempotency_key=f"key-{n}",
        next_poll_at=None,
        account=account,
    )
    intent = Intent(
        intent_id=rid,
        owner=owner,
        created_at=T0,
        job=job,
        idempotency_scope=CALLER,
        idempotency_key=f"key-{n}",
        reservation_id=f"job:{rid}",
    )
    row = QueuedSubmit(
        queue_id=f"q-{n:032x}",
        team="studio",
        caller=CALLER,
        state=QueueState.QUEUED,
        enqueued_at=T0 + n,
        not_before=T0 + n,
        path="/api/v1/minimax/hailuo-02-t2v",
        body=b'{"prompt": "x"}',
        headers={"Content-Type": "application/json"},
        job=job,
        idempotency_scope=CALLER,
        idempotency_key=f"key-{n}",
        reservation_id=f"job:{rid}",
    )
    return intent, row


def _answer(row: QueuedSubmit) -> StoredResponse:
    return StoredResponse(status=200, headers={}, body=b"queued", task_id=row.queue_id)


async def _admit(store: Store, n: int, **kw: int) -> tuple[Admission, Intent, QueuedSubmit]:
    intent, row = await _request(store, n)
    limits = {"limit": 1, "max_queue": 5, **kw}
    decision = await store.admission_admit(intent, row, _answer(row), now=T0 + n, **limits)
    return decision, intent, row


async def test_admit_sends_while_a_slot_is_free_then_queues_then_refuses(store: Store) -> None:
    """First submit: send (intent written); next: queued (key replays the q- answer); past
    the max queue: full, nothing written."""
    first, intent, _ = await _admit(store, 1, max_queue=1)
    assert first is Admission.SEND
    assert [i.intent_id for i in await store.list_intents()] == [intent.intent_id]
    second, _, row = await _admit(store, 2, max_queue=1)
    assert second is Admission.QUEUED
    replay = await store.claim(CALLER, "key-2", "fp", T0 + 3)
    assert replay.outcome is ClaimOutcome.REPLAY
    assert replay.task_id == row.queue_id
    third, _, row3 = await _admit(store, 3, max_queue=1)
    assert third is Admission.FULL
    assert await store.admission_get(row3.queue_id) is None
    assert await store.admission_in_flight("studio") == 1


async def test_queued_holds_survive_a_dead_replica_and_dispatch_moves_them(store: Store) -> None:
    """The recovery sweep of a dead replica leaves a queue row's money alone; a claim writes
    the intent (one slot each), the job takes the reservation over."""
    await _admit(store, 1)  # in flight: the only slot
    _, _, row = await _admit(store, 2)
    recovered = await store.recover("replica-b", T0 + 1000, 30.0)  # replica-a is dead
    assert [j.task_id for j in recovered.unknown] == [unknown_task_id("req1")]
    held = {h.reservation_id for h in await store.open_reservations()}
    assert held == {"job:req1", "job:req2"}  # the unknown record's and the queue row's
    # req1 is unknown now (not counted): the slot is free
    claim = await store.admission_claim(row.queue_id, "replica-b", T0 + 1001, 1)
    assert claim is not None
    assert claim.intent.reservation_id == "job:req2"
    assert await store.admission_claim(row.queue_id, "replica-b", T0 + 1001, 1) is None
    job = dataclasses.replace(claim.intent.job, task_id="task-9", next_poll_at=T0 + 1002)
    recorded = await store.admission_to_job(row.queue_id, claim.intent, job, T0 + 1002)
    assert recorded.task_id == "task-9"
    assert recorded.reservation_id == "job:req2"
    done = await store.admission_get(row.queue_id)
    assert done is not None
    assert done.state is QueueState.DISPATCHED
    assert done.task_id == "task-9"
    assert not await store.list_intents()


async def test_an_account_rate_lets_its_allowance_go_each_minute_then_queues(
    store: Store,
) -> None:
    """At 2 submits a minute, two of the account's submits go, the third queues and is
    claimed only once the first is a minute old; another account is not held back."""
    decisions = []
    for n in (1, 2, 3):
        intent, row = await _request(store, n, account="studio-acct")
        decisions.append(
            await store.admission_admit(
                intent, row, _answer(row), limit=10, max_queue=5, now=T0 + n, account_rpm=2
            )
        )
    assert decisions == [Admission.SEND, Admission.SEND, Admission.QUEUED]
    assert await store.admission_account_sends("studio-acct", T0 + 3) == 2
    assert await store.admission_claim(row.queue_id, "replica-a", T0 + 60.5, 10, None, 2) is None
    claim = await store.admission_claim(row.queue_id, "replica-a", T0 + 61, 10, None, 2)
    assert claim is not None
    assert await store.admission_account_sends("studio-acct", T0 + 61) == 2
    intent, other = await _request(store, 4, account="agency-acct")
    decision = await store.admission_admit(
        intent, other, _answer(other), limit=10, max_queue=5, now=T0 + 61, account_rpm=2
    )
    assert decision is Admission.SEND


async def test_claims_respect_the_team_limit(store: Store) -> None:
    """With one slot in use by a pending job, nothing is claimed until it is terminal."""
    await _admit(store, 1)
    _, _, row = await _admit(store, 2)
    assert await store.admission_claim(row.queue_id, "replica-a", T0 + 5, 1) is None
    assert await store.admission_claim(row.queue_id, "replica-a", T0 + 5, 2) is not None


async def test_cancel_releases_money_and_key(store: Store) -> None:
    """Cancelling a queued row releases its reservation and forgets its key; a dispatched
    row cannot be cancelled."""
    await _admit(store, 1)
    _, _, row = await _admit(store, 2)
    assert await store.admission_cancel(row.queue_id, "Cancelled: test", T0 + 9) is Cancel.CANCELLED
    assert {h.reservation_id for h in await store.open_reservations()} == {"job:req1"}
    again = await store.claim(CALLER, "key-2", "fp", T0 + 10)
    assert again.outcome is ClaimOutcome.NEW
    assert await store.admission_cancel(row.queue_id, "x", T0 + 11) is Cancel.TOO_LATE
    assert await store.admission_cancel("q-" + "f" * 32, "x", T0 + 11) is Cancel.NOT_FOUND


async def test_a_dispatch_cut_short_by_a_crash_becomes_unknown(store: Store) -> None:
    """A claim whose replica dies before the answer is recorded: the sweep makes its intent an
    unknown record (money kept), and the row says unknown; it is never claimed again."""
    _, _, row = await _admit(store, 1, limit=0)  # no slot: queued
    claim = await store.admission_claim(row.queue_id, "replica-c", T0 + 2, 1)
    assert claim is not None
    await store.recover("replica-b", T0 + 1000, 30.0)
    assert await store.admission_orphans(T0 + 1001) == 1
    done = await store.admission_get(row.queue_id)
    assert done is not None
    assert done.state is QueueState.UNKNOWN
    assert done.task_id == claim.intent.placeholder
    job = await store.get_job(claim.intent.placeholder)
    assert job is not None
    assert job.status is JobStatus.UNKNOWN
    assert {h.reservation_id for h in await store.open_reservations()} == {"job:req1"}
    assert await store.admission_claim(row.queue_id, "replica-b", T0 + 1002, 5) is None


async def test_expiry_releases_and_requeue_keeps_holds(store: Store) -> None:
    """A 429 on dispatch requeues (holds kept, due later); past max wait the row expires."""
    _, _, row = await _admit(store, 1, limit=0)
    claim = await store.admission_claim(row.queue_id, "replica-a", T0 + 2, 1)
    assert claim is not None
    assert await store.admission_requeue(row.queue_id, claim.intent, T0 + 50, "429", T0 + 3)
    assert await store.admission_ready(T0 + 10, 10) == []
    assert [h.queue_id for h in await store.admission_ready(T0 + 50, 10)] == [row.queue_id]
    expired = await store.admission_expire("studio", T0 + 100, "Queue wait exceeded", T0 + 100)
    assert [r.queue_id for r in expired] == [row.queue_id]
    assert not await store.open_reservations()
    assert [s.depth for s in await store.admission_stats()] == []
