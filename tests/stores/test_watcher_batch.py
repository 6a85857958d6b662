"""Contract tests of the watcher's batched store operations: chunked leases, batched reschedules."""

from __future__ import annotations

import asyncio
import json

from proxy.stores import Store
from proxy.stores._job_upkeep import DUE_FOR_LEASE
from proxy.stores.base import Reschedule
from tests.stores.helpers import T0, new_job, raw_many, raw_query

LEASE = 60.0


async def test_lease_due_at_gives_due_times_most_overdue_first(store: Store) -> None:
    """Leased jobs come with the time they were due (their next poll is now the lease end)."""
    for i, due in enumerate((T0 + 7, T0 + 3, T0 + 5, T0 + 50)):
        await store.insert_job(new_job(f"at/{i}", next_poll_at=due))
    leased = await store.lease_due_at("w-a", T0 + 10, 10, LEASE)
    assert [(lj.job.task_id, lj.due_at) for lj in leased] == [
        ("at/1", T0 + 3),
        ("at/2", T0 + 5),
        ("at/0", T0 + 7),
    ]
    assert all(lj.job.lease_owner == "w-a" for lj in leased)
    assert all(lj.job.next_poll_at == lj.job.lease_expires_at == T0 + 10 + LEASE for lj in leased)
    assert await store.lease_due_at("w-b", T0 + 10, 10, LEASE) == []


async def test_concurrent_chunked_leases_are_disjoint(store: Store, replica: Store) -> None:
    """Owners leasing chunks at once never get the same job, and together get every due one."""
    for i in range(60):
        await store.insert_job(new_job(f"ch/{i:02}", next_poll_at=T0 + i))
    rounds = await asyncio.gather(
        *(
            (store if i % 2 else replica).lease_due_at(f"w-{i % 2}", T0 + 100, 9, LEASE)
            for i in range(10)
        )
    )
    ids = [lj.job.task_id for batch in rounds for lj in batch]
    assert len(ids) == len(set(ids)) == 60


async def test_reschedule_many_writes_only_what_the_owner_holds(store: Store) -> None:
    """One call releases the owner's leases, sets next polls and adds the uncounted polls."""
    for i in range(4):
        await store.insert_job(new_job(f"rm/{i}", next_poll_at=T0))
    leased = await store.lease_due_at("w-a", T0, 3, LEASE)
    assert len(leased) == 3
    await store.observe(leased[2].job.task_id, "success", T0 + 1, source="watcher")
    items = [
        Reschedule(leased[0].job.task_id, T0 + 5, 1, False, polls=1),
        Reschedule(leased[1].job.task_id, T0 + 9, 13, True, polls=0),
        Reschedule(leased[2].job.task_id, T0 + 5, 1, False, polls=1),  # terminal: ignored
        Reschedule("rm/3", T0 + 5, 1, False, polls=1),  # not leased by w-a: ignored
        Reschedule("missing/1", T0 + 5, 1, False, polls=1),
    ]
    assert await store.reschedule_many("w-b", items) == 0
    assert await store.reschedule_many("w-a", items) == 2
    first = await store.get_job(leased[0].job.task_id)
    second = await store.get_job(leased[1].job.task_id)
    assert first is not None
    assert second is not None
    assert (first.next_poll_at, first.watcher_attempts, first.stale) == (T0 + 5, 1, False)
    assert (first.lease_owner, first.lease_expires_at, first.watcher_polls) == (None, None, 1)
    assert (second.next_poll_at, second.watcher_attempts, second.stale) == (T0 + 9, 13, True)
    assert second.watcher_polls == 0
    done = await store.get_job(leased[2].job.task_id)
    assert done is not None
    assert (done.next_poll_at, done.watcher_polls) == (None, 1)
    untouched = await store.get_job("rm/3")
    assert untouched is not None
    assert (untouched.next_poll_at, untouched.watcher_polls) == (T0, 0)
    assert await store.reschedule_many("w-a", []) == 0


async def test_reschedule_many_takes_large_batches(store: Store) -> None:
    """More jobs than one statement carries are written in one call; a repeated job once, last."""
    count = 1_203
    for start in range(0, count, 100):
        await asyncio.gather(
            *(
                store.insert_job(new_job(f"big/{i:04}", next_poll_at=T0))
                for i in range(start, min(count, start + 100))
            )
        )
    leased = await store.lease_due_at("w-a", T0, count, LEASE)
    assert len(leased) == count
    items = [Reschedule(lj.job.task_id, T0 + 30, 2, False, polls=1) for lj in leased]
    items.append(Reschedule("big/0000", T0 + 99, 3, False, polls=1))
    assert await store.reschedule_many("w-a", items) == count
    assert await store.earliest_due_at() == T0 + 30
    last = await store.get_job("big/0000")
    assert last is not None
    assert (last.next_poll_at, last.watcher_attempts, last.watcher_polls) == (T0 + 99, 3, 1)
    assert len(await store.lease_due_at("w-b", T0 + 30, 5000, LEASE)) == count - 1


async def test_earliest_due_at_includes_leases_and_skips_terminal(store: Store) -> None:
    """The earliest next poll among watched open jobs: the watcher's alarm clock."""
    assert await store.earliest_due_at() is None
    await store.insert_job(new_job("e/1", next_poll_at=T0 + 40))
    await store.insert_job(new_job("e/2", next_poll_at=T0 + 20))
    await store.insert_job(new_job("e/3", next_poll_at=None))
    assert await store.earliest_due_at() == T0 + 20
    await store.lease_due_at("w-a", T0 + 20, 10, LEASE)
    assert await store.earliest_due_at() == T0 + 40
    await store.observe("e/1", "success", T0 + 21)
    assert await store.earliest_due_at() == T0 + 20 + LEASE


async def test_due_for_lease_uses_the_next_poll_index(store: Store, store_url: str) -> None:
    """The chunked lease's due scan is an index range scan on next_poll_at, not a table scan."""
    terminal = [
        (f"done/{i}", "fp:x", "m/x", "success", T0, T0 + 1, json.dumps([]), json.dumps([]))
        for i in range(3000)
    ]
    await raw_many(
        store_url,
        "INSERT INTO jobs (task_id, caller, pinned_slug, status, submitted_at, terminal_at,"
        " history, output_urls) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        terminal,
    )
    for i in range(5):
        await store.insert_job(new_job(f"open/{i}", next_poll_at=T0 + i))
    if store_url.startswith("sqlite:"):
        await raw_query(store_url, "ANALYZE")
        plan = await raw_query(
            store_url, "EXPLAIN QUERY PLAN " + DUE_FOR_LEASE.replace("$", "?"), T0, 10
        )
        details = [str(row[-1]) for row in plan]
        assert "SEARCH jobs USING INDEX jobs_due (next_poll_at<?)" in details
        assert not any(d.startswith("SCAN") for d in details)
    else:
        await raw_query(store_url, "ANALYZE jobs")
        plan = await raw_query(store_url, "EXPLAIN (FORMAT JSON) " + DUE_FOR_LEASE, T0, 10)
        top = json.loads(plan[0][0])[0]["Plan"]
        nodes = [top, *top.get("Plans", [])]
        scans = [n for n in nodes if n.get("Relation Name") == "jobs"]
        assert [(n["Node Type"], n["Index Name"]) for n in scans] == [("Index Scan", "jobs_due")]
    assert len(await store.lease_due_at("w-a", T0 + 10, 10, LEASE)) == 5
