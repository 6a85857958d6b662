"""Contract tests of watcher scheduling: leases, rescheduling, deferral and expiry."""

from __future__ import annotations

import asyncio

from proxy.stores import Store
from proxy.stores.records import JobStatus
from tests.stores.helpers import T0, new_job

LEASE = 60.0


async def test_lease_due_takes_only_due_open_jobs(store: Store) -> None:
    """Only non-terminal jobs whose next poll has come are leased, and they carry the lease."""
    await store.insert_job(new_job("due/1", next_poll_at=T0 + 10))
    await store.insert_job(new_job("due/2", next_poll_at=T0 + 20))
    await store.insert_job(new_job("later/1", next_poll_at=T0 + 500))
    await store.insert_job(new_job("unwatched/1", next_poll_at=None))
    await store.insert_job(new_job("done/1", next_poll_at=T0 + 5))
    await store.observe("done/1", "success", T0 + 6)
    leased = await store.lease_due("w-a", T0 + 20, 10, LEASE)
    assert sorted(j.task_id for j in leased) == ["due/1", "due/2"]
    assert all(j.lease_owner == "w-a" for j in leased)
    assert all(j.lease_expires_at == T0 + 20 + LEASE for j in leased)
    assert await store.lease_due("w-b", T0 + 20, 10, LEASE) == []


async def test_lease_due_respects_limit_in_due_order(store: Store) -> None:
    """With more due jobs than the limit, the longest-waiting ones are leased first."""
    for i in range(5):
        await store.insert_job(new_job(f"ord/{i}", next_poll_at=T0 + 10 - i))
    leased = await store.lease_due("w-a", T0 + 10, 2, LEASE)
    assert sorted(j.task_id for j in leased) == ["ord/3", "ord/4"]


async def test_concurrent_owners_get_disjoint_leases(store: Store, replica: Store) -> None:
    """Two replicas leasing at once never get the same job, and together get all of them."""
    for i in range(40):
        await store.insert_job(new_job(f"dis/{i:02}", next_poll_at=T0 + i))
    now = T0 + 100
    rounds = await asyncio.gather(
        *((store if i % 2 else replica).lease_due(f"w-{i % 2}", now, 7, LEASE) for i in range(8))
    )
    ids = [j.task_id for batch in rounds for j in batch]
    assert len(ids) == len(set(ids)) == 40
    for owner in ("w-0", "w-1"):
        mine = {j.task_id for i, b in enumerate(rounds) if f"w-{i % 2}" == owner for j in b}
        for task_id in mine:
            job = await store.get_job(task_id)
            assert job is not None
            assert job.lease_owner == owner


async def test_dead_owner_lease_expires_and_is_taken_over(store: Store, replica: Store) -> None:
    """A lease nobody releases is taken over once it expires, and the old owner loses it."""
    await store.insert_job(new_job("take/1", next_poll_at=T0))
    assert [j.task_id for j in await store.lease_due("dead", T0, 10, LEASE)] == ["take/1"]
    assert await replica.lease_due("alive", T0 + LEASE - 1, 10, LEASE) == []
    taken = await replica.lease_due("alive", T0 + LEASE, 10, LEASE)
    assert [j.lease_owner for j in taken] == ["alive"]
    assert not await store.reschedule("take/1", "dead", T0 + 1, 1, False)
    assert await replica.reschedule("take/1", "alive", T0 + 200, 1, False)


async def test_reschedule_by_owner_releases_and_sets_next_poll(store: Store) -> None:
    """The owner's reschedule clears the lease and sets next poll, attempts and the stale flag."""
    await store.insert_job(new_job("re/1", next_poll_at=T0))
    await store.lease_due("w-a", T0, 10, LEASE)
    assert not await store.reschedule("re/1", "w-b", T0 + 5, 9, True)
    assert await store.reschedule("re/1", "w-a", T0 + 30, 13, True)
    job = await store.get_job("re/1")
    assert job is not None
    assert (job.lease_owner, job.lease_expires_at) == (None, None)
    assert (job.next_poll_at, job.watcher_attempts, job.stale) == (T0 + 30, 13, True)
    assert await store.lease_due("w-b", T0 + 29, 10, LEASE) == []
    assert len(await store.lease_due("w-b", T0 + 30, 10, LEASE)) == 1


async def test_terminal_observation_drops_lease_and_schedule(store: Store) -> None:
    """A job turning terminal while leased leaves the queue and ignores its owner's reschedule."""
    await store.insert_job(new_job("term/1", next_poll_at=T0))
    await store.lease_due("w-a", T0, 10, LEASE)
    step = await store.observe("term/1", "success", T0 + 1, source="watcher")
    assert step.became_terminal
    assert (step.job.lease_owner, step.job.next_poll_at) == (None, None)
    assert not await store.reschedule("term/1", "w-a", T0 + 30, 1, False)
    assert await store.lease_due("w-a", T0 + 10_000, 10, LEASE) == []


async def test_client_poll_defers_the_watcher(store: Store) -> None:
    """A client observation with defer_until, or defer(), keeps the watcher away until then."""
    await store.insert_job(new_job("cli/1", next_poll_at=T0 + 15))
    step = await store.observe("cli/1", "processing", T0 + 10, defer_until=T0 + 40)
    assert step.job.last_client_poll_at == T0 + 10
    assert step.job.next_poll_at == T0 + 40
    assert await store.lease_due("w-a", T0 + 39, 10, LEASE) == []
    assert await store.defer("cli/1", T0 + 90)
    assert await store.defer("cli/1", T0 + 50)
    job = await store.get_job("cli/1")
    assert job is not None
    assert job.next_poll_at == T0 + 90
    assert not await store.defer("missing/1", T0 + 90)


async def test_expire_overdue_exactly_once(store: Store, replica: Store) -> None:
    """Overdue open jobs are expired and returned by exactly one of many concurrent callers."""
    retention = 24 * 3600.0
    for i in range(10):
        await store.insert_job(new_job(f"old/{i}", submitted_at=T0 + i))
    await store.insert_job(new_job("old/done", submitted_at=T0))
    await store.observe("old/done", "success", T0 + 30)
    await store.insert_job(new_job("young/1", submitted_at=T0 + retention))
    now = T0 + retention + 9
    results = await asyncio.gather(
        *((store if i % 2 else replica).expire_overdue(now, retention) for i in range(6))
    )
    expired = [j for batch in results for j in batch]
    assert sorted(j.task_id for j in expired) == [f"old/{i}" for i in range(10)]
    assert all(j.status is JobStatus.EXPIRED and j.terminal_at == now for j in expired)
    assert expired[0].history[-1].source == "expiry"
    young = await store.get_job("young/1")
    assert young is not None
    assert young.status is JobStatus.PENDING
    assert await store.expire_overdue(now, retention) == []


async def test_watcher_stats_count_due_and_stale(store: Store) -> None:
    """Due jobs, the oldest due time and open stale jobs are counted; leased ones are not due."""
    await store.insert_job(new_job("s/1", next_poll_at=T0 + 10))
    await store.insert_job(new_job("s/2", next_poll_at=T0 + 30))
    await store.insert_job(new_job("s/3", next_poll_at=T0 + 500))
    stats = await store.watcher_stats(T0 + 40)
    assert (stats.due, stats.oldest_due_at, stats.stale) == (2, T0 + 10, 0)
    leased = await store.lease_due("w-a", T0 + 40, 1, LEASE)
    await store.reschedule(leased[0].task_id, "w-a", T0 + 600, 12, True)
    stats = await store.watcher_stats(T0 + 40)
    assert (stats.due, stats.oldest_due_at, stats.stale) == (1, T0 + 30, 1)
    await store.observe(leased[0].task_id, "success", T0 + 41)
    assert (await store.watcher_stats(T0 + 40)).stale == 0
