"""Contract tests of retention: bounded purges, named leases, one retention round at a time."""

from __future__ import annotations

import asyncio

from proxy.config import RetentionSettings, Settings
from proxy.retention import LEASE, Retention
from proxy.stores import Store
from proxy.stores.audit_records import AuditDraft
from proxy.stores.records import BudgetScope, JobStatus, Refusal
from proxy.telemetry.metrics import Metrics
from tests.stores.helpers import T0, new_job, raw_query

TTL = 3600.0
DAY = 86400.0
ROWS = 150


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _keys(url: str) -> set[str]:
    return {str(r[0]) for r in await raw_query(url, "SELECT key FROM idempotency_keys")}


async def test_idempotency_purge_takes_only_expired_keys_in_batches(
    store: Store, store_url: str
) -> None:
    """Expired keys go at most ``limit`` per call; live keys and recent claims stay."""
    for i in range(5):
        await store.claim("s", f"old-{i}", "fp", T0, ttl_seconds=TTL)
    await store.claim("s", "late", "fp", T0 + 2 * TTL, ttl_seconds=TTL)
    await store.claim("s", "live", "fp", T0 + 3 * TTL, ttl_seconds=TTL)
    now = T0 + 3 * TTL + 1
    assert await store.purge_idempotency_keys(now, now, 2) == 2
    assert await store.purge_idempotency_keys(now, now - TTL * 1.5, 10) == 3
    assert await _keys(store_url) == {"late", "live"}
    assert await store.purge_idempotency_keys(now, now, 10) == 1
    assert await store.purge_idempotency_keys(now, now, 10) == 0
    assert await _keys(store_url) == {"live"}


async def test_refusal_purge_takes_oldest_before_cutoff(store: Store, store_url: str) -> None:
    """Refusals older than the cutoff go oldest first, at most ``limit`` per call."""
    for i in range(6):
        await store.record_refusal(Refusal(at=T0 + i * DAY, reason="unauthenticated"))
    assert await store.purge_refusals(T0 + 4 * DAY, 3) == 3
    rows = await raw_query(store_url, "SELECT at FROM refusals ORDER BY at")
    assert [float(r[0]) for r in rows] == [T0 + i * DAY for i in (3, 4, 5)]
    assert await store.purge_refusals(T0 + 4 * DAY, 3) == 1
    assert await store.purge_refusals(T0 + 4 * DAY, 3) == 0


async def test_terminal_job_purge_never_takes_open_jobs(store: Store) -> None:
    """Only jobs terminal before the cutoff are deleted; open and recent ones stay."""
    await store.insert_job(new_job("done/old", submitted_at=T0))
    await store.observe("done/old", "success", T0 + 60)
    await store.insert_job(new_job("done/new", submitted_at=T0))
    await store.observe("done/new", "failed", T0 + 5 * DAY)
    await store.insert_job(new_job("open/old", submitted_at=T0))
    await store.insert_job(new_job("unknown/old", submitted_at=T0, status=JobStatus.UNKNOWN))
    assert await store.purge_terminal_jobs(T0 + DAY, 10) == 1
    assert await store.get_job("done/old") is None
    for task_id in ("done/new", "open/old", "unknown/old"):
        assert await store.get_job(task_id) is not None, task_id


async def test_unknown_jobs_sum_reserved_estimates(store: Store) -> None:
    """Unknown jobs are counted; only those holding a reservation add their estimate."""
    await store.insert_job(
        new_job("unknown:a", status=JobStatus.UNKNOWN, estimated_cost_micros=500_000,
                reservation_id="r-a")
    )  # fmt: skip
    await store.insert_job(
        new_job("unknown:b", status=JobStatus.UNKNOWN, estimated_cost_micros=700_000)
    )
    await store.insert_job(new_job("video/c", estimated_cost_micros=900_000, reservation_id="r-c"))
    summary = await store.unknown_jobs()
    assert (summary.jobs, summary.held_micros) == (2, 500_000)
    assert await store.open_among(["unknown:a", "video/c", "missing"]) == {"unknown:a", "video/c"}


async def test_lease_has_one_holder_until_it_expires(store: Store, replica: Store) -> None:
    """A lease is held by one owner, renewable by it, free after expiry or release."""
    assert await store.acquire_lease("job", "a", T0, T0 + 10)
    assert not await replica.acquire_lease("job", "b", T0 + 5, T0 + 15)
    assert await store.acquire_lease("job", "a", T0 + 5, T0 + 20)
    assert not await replica.acquire_lease("job", "b", T0 + 15, T0 + 25)
    assert await replica.acquire_lease("job", "b", T0 + 20, T0 + 30)
    assert not await store.release_lease("job", "a")
    assert await replica.release_lease("job", "b")
    assert await store.acquire_lease("job", "a", T0 + 21, T0 + 31)


async def test_concurrent_lease_claims_have_one_winner(store: Store, replica: Store) -> None:
    """Of many owners claiming a free lease at once, across connections, exactly one wins."""
    results = await asyncio.gather(
        *(
            (store if i % 2 else replica).acquire_lease("race", f"o{i}", T0, T0 + 60)
            for i in range(16)
        )
    )
    assert sum(results) == 1


def _settings(batch: int) -> Settings:
    return Settings(
        retention=RetentionSettings(
            batch_size=batch,
            refusals_seconds=DAY,
            interval_seconds=300,
            lease_seconds=30,
        )
    )


async def test_two_runners_never_both_run_a_round(
    store: Store, replica: Store, store_url: str
) -> None:
    """While one replica's round runs (many batches), the other's attempts all stand aside."""
    clock = Clock(T0 + 10 * DAY)
    for i in range(ROWS):
        await store.claim("s", f"k{i}", "fp", T0, ttl_seconds=TTL)
    first = Retention(store, _settings(1), Metrics(), "replica-a", clock=clock)
    second = Retention(replica, _settings(1), Metrics(), "replica-b", clock=clock)
    running = asyncio.get_running_loop().create_task(first.round())
    async with asyncio.timeout(30):
        while True:
            if await _lease_owner(store_url) == "replica-a":
                break
            await asyncio.sleep(0.001)
    attempts: list[dict[str, int] | None] = []
    async with asyncio.timeout(30):
        while not running.done():
            attempts.append(await second.round())
    assert await running == {
        "idempotency_keys": ROWS,
        "refusals": 0,
        "budget_reservations": 0,
        "settlements": 0,
        "media_files": 0,
        "audit_log": 0,
    }
    assert attempts
    assert all(a is None for a in attempts)
    # The finished round holds the lease until the next one is due.
    assert await second.round() is None
    clock.now += 301
    assert await second.round() == {
        "idempotency_keys": 0,
        "refusals": 0,
        "budget_reservations": 0,
        "settlements": 0,
        "media_files": 0,
        "audit_log": 0,
    }
    assert await first.round() is None
    assert await _lease_owner(store_url) == "replica-b"


async def _lease_owner(url: str) -> str | None:
    rows = await raw_query(url, f"SELECT owner FROM leases WHERE name = '{LEASE}'")  # noqa: S608
    return str(rows[0][0]) if rows else None


async def test_round_counts_purged_rows_and_success_time(store: Store) -> None:
    """A round adds purged rows per table to the counter and sets the last-success gauge."""
    clock = Clock(T0 + 10 * DAY)
    metrics = Metrics()
    for i in range(5):
        await store.claim("s", f"k{i}", "fp", T0, ttl_seconds=TTL)
    await store.claim("s", "live", "fp", clock.now, ttl_seconds=TTL)
    for i in range(3):  # closed long ago, closed recently, still open
        scope = [BudgetScope("global", T0, 10**9)]
        at = (T0, clock.now - 60, T0)[i]
        await store.budget_reserve(scope, 100, reservation_id=f"r{i}", at=at)
        if i < 2:
            await store.budget_release(f"r{i}")
    await store.record_media_file("expired-upstream", "key-a", None, T0)
    await store.record_media_file("live-file", "key-a", None, clock.now - 60)
    for at in (T0 - 500 * DAY, T0 - 401 * DAY, T0):  # audit.retention_days is 400
        async with store.audited(AuditDraft(at, "ops", "cli", "key.revoke", "k")):
            pass
    assert await Retention(store, _settings(2), metrics, "r", clock=clock).round() == {
        "idempotency_keys": 5,
        "refusals": 0,
        "budget_reservations": 1,
        "settlements": 0,
        "media_files": 1,
        "audit_log": 2,
    }
    assert [r.at for r in await store.audit_rows()] == [T0]
    assert await store.media_file_owner("live-file") == "key-a"
    registry = metrics.registry
    sample = registry.get_sample_value
    assert sample("modellix_proxy_retention_purged_rows_total", {"table": "idempotency_keys"}) == 5
    assert sample("modellix_proxy_retention_last_success_timestamp_seconds") == clock.now
