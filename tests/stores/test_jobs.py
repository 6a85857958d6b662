"""Contract tests of the job ledger, run against every backend."""

from __future__ import annotations

import asyncio

import pytest

from proxy.stores import DuplicateJobError, JobNotFoundError, Store
from proxy.stores.audit_records import AuditDraft
from proxy.stores.records import JobStatus, StatusChange, Transition
from tests.stores.helpers import T0, new_job


async def test_insert_get_round_trip_keeps_every_field(store: Store) -> None:
    """A job with '/' and unicode in its fields reads back exactly as inserted."""
    job = new_job(
        "wan/2.5/t2v/ü-任务-🎬",
        team="équipe",
        project="広告",
        idempotency_key="idem-ключ",
        estimated_cost_micros=9_000_000_000_001,
        upstream_attempts=3,
    )
    inserted = await store.insert_job(job)
    fetched = await store.get_job(job.task_id)
    assert fetched == inserted
    assert fetched is not None
    assert fetched.task_id == "wan/2.5/t2v/ü-任务-🎬"
    assert (fetched.team, fetched.project) == ("équipe", "広告")
    assert fetched.idempotency_key == "idem-ключ"
    assert fetched.estimated_cost_micros == 9_000_000_000_001
    assert fetched.upstream_attempts == 3
    assert fetched.traceparent == job.traceparent
    assert fetched.status is JobStatus.PENDING
    assert fetched.history == (StatusChange("pending", T0, "submit"),)
    assert fetched.next_poll_at == T0 + 15
    assert (fetched.client_polls, fetched.watcher_polls, fetched.stale) == (0, 0, False)


async def test_get_missing_job_is_none(store: Store) -> None:
    """Looking up an unrecorded task id returns None."""
    assert await store.get_job("nope/1") is None


async def test_has_job_says_whether_the_ledger_holds_the_task(store: Store) -> None:
    """``has_job`` is true for an inserted task id (with '/' and unicode), false otherwise."""
    await store.insert_job(new_job("kling/v2/ü-1"))
    assert await store.has_job("kling/v2/ü-1")
    assert not await store.has_job("kling/v2/ü-2")
    assert not await store.has_job("kling/v2/U-1")


async def test_has_job_sees_a_commit_at_once_and_a_joined_transaction_its_own_rows(
    store: Store, replica: Store
) -> None:
    """A job committed elsewhere is seen at once; inside an audited change (a joined
    transaction) the job it inserted is seen before it commits."""
    await replica.insert_job(new_job("seen/1"))
    assert await store.has_job("seen/1")
    async with store.audited(AuditDraft(T0, "ops", "cli", "job.test", "seen/2")):
        await store.insert_job(new_job("seen/2"))
        assert await store.has_job("seen/2")
    assert await store.has_job("seen/2")


async def test_has_job_is_never_stuck_on_an_earlier_answer(store: Store, replica: Store) -> None:
    """A task id first not in the ledger is seen once another connection commits it, and
    one seen stays seen: every look reads what is committed now."""
    for _ in range(2):
        assert not await store.has_job("later/1")
    await replica.insert_job(new_job("later/1"))
    for _ in range(2):
        assert await store.has_job("later/1")
    assert not await store.has_job("later/2")


async def test_duplicate_insert_is_refused(store: Store) -> None:
    """A second insert with the same task id raises DuplicateJobError and changes nothing."""
    await store.insert_job(new_job("dup/1", team="a"))
    with pytest.raises(DuplicateJobError):
        await store.insert_job(new_job("dup/1", team="b"))
    job = await store.get_job("dup/1")
    assert job is not None
    assert job.team == "a"


async def test_insert_is_durable_for_another_connection(store: Store, replica: Store) -> None:
    """Once insert_job returns, another connection or replica sees the job."""
    await store.insert_job(new_job("durable/1"))
    assert await replica.get_job("durable/1") is not None


async def test_observe_moves_forward_only(store: Store) -> None:
    """Statuses apply only forward; a terminal status never changes and timestamps are set once."""
    await store.insert_job(new_job("fwd/1"))
    step = await store.observe("fwd/1", "processing", T0 + 20)
    assert (step.previous_status, step.new_status) == (JobStatus.PENDING, JobStatus.PROCESSING)
    assert step.changed
    assert not step.became_terminal
    back = await store.observe("fwd/1", "pending", T0 + 25, source="watcher")
    assert not back.changed
    assert back.new_status is JobStatus.PROCESSING
    done = await store.observe(
        "fwd/1", "success", T0 + 60, output_urls=["https://cdn/x.mp4"], final_cost_micros=1_000_000
    )
    assert done.became_terminal
    assert done.job.output_urls == ("https://cdn/x.mp4",)
    late = await store.observe("fwd/1", "failed", T0 + 70, error_reason="late")
    assert not late.changed
    assert not late.became_terminal
    job = await store.get_job("fwd/1")
    assert job is not None
    assert job.status is JobStatus.SUCCESS
    assert (job.first_processing_at, job.terminal_at) == (T0 + 20, T0 + 60)
    assert job.final_cost_micros == 1_000_000
    assert job.error_reason is None
    assert job.next_poll_at is None
    assert [c.status for c in job.history] == ["pending", "processing", "success"]
    assert (job.client_polls, job.watcher_polls) == (3, 1)
    assert job.last_client_poll_at == T0 + 70


async def test_observe_failure_records_reason(store: Store) -> None:
    """A failed terminal keeps the error reason and skips first_processing_at if never seen."""
    await store.insert_job(new_job("fail/1"))
    step = await store.observe("fail/1", "FAILED", T0 + 5, error_reason="content policy")
    assert step.became_terminal
    assert step.job.status is JobStatus.FAILED
    assert step.job.error_reason == "content policy"
    assert step.job.first_processing_at is None


async def test_unknown_status_strings_are_history_only(store: Store) -> None:
    """An unrecognised upstream status is kept in history once per change, never moving the job."""
    await store.insert_job(new_job("odd/1"))
    for at in (T0 + 1, T0 + 2):
        step = await store.observe("odd/1", "queued", at)
        assert not step.changed
        assert step.new_status is JobStatus.PENDING
    job = await store.get_job("odd/1")
    assert job is not None
    assert [(c.status, c.at) for c in job.history] == [("pending", T0), ("queued", T0 + 1)]
    assert job.last_seen_status == "queued"
    assert job.client_polls == 2


async def test_observe_missing_job_raises(store: Store) -> None:
    """Observing an unrecorded task id raises JobNotFoundError."""
    with pytest.raises(JobNotFoundError):
        await store.observe("ghost/1", "success", T0)


async def test_became_terminal_exactly_once_across_replicas(store: Store, replica: Store) -> None:
    """Of 60 concurrent terminal observations over two replicas, exactly one becomes terminal."""
    await store.insert_job(new_job("race/1"))

    async def observe(i: int) -> Transition:
        target = store if i % 2 else replica
        status = "success" if i % 3 else "failed"
        return await target.observe("race/1", status, T0 + i, source="watcher")

    steps = await asyncio.gather(*(observe(i) for i in range(60)))
    winners = [s for s in steps if s.became_terminal]
    assert len(winners) == 1
    job = await store.get_job("race/1")
    assert job is not None
    assert job.status is winners[0].new_status
    assert job.watcher_polls == 60
    assert len(job.history) == 2


async def test_unknown_submit_outcome_can_move_to_pending(store: Store) -> None:
    """A job recorded with an unknown submit outcome moves on when upstream reports it."""
    await store.insert_job(new_job("unk/1", status=JobStatus.UNKNOWN, next_poll_at=None))
    step = await store.observe("unk/1", "pending", T0 + 30)
    assert step.changed
    assert step.new_status is JobStatus.PENDING


async def test_list_jobs_filters_and_pages(store: Store) -> None:
    """list_jobs filters by status, team and time and pages newest first without gaps."""
    for i in range(7):
        team = "growth" if i % 2 else "brand"
        await store.insert_job(new_job(f"list/{i}", team=team, submitted_at=T0 + (i // 2)))
    await store.observe("list/6", "success", T0 + 100)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await store.list_jobs(limit=3, after=cursor)
        seen.extend(j.task_id for j in page.jobs)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["list/6", "list/5", "list/4", "list/3", "list/2", "list/1", "list/0"]
    growth = await store.list_jobs(team="growth")
    assert [j.task_id for j in growth.jobs] == ["list/5", "list/3", "list/1"]
    assert growth.next_cursor is None
    done = await store.list_jobs(status=JobStatus.SUCCESS)
    assert [j.task_id for j in done.jobs] == ["list/6"]
    window = await store.list_jobs(since=T0 + 1, until=T0 + 3, team="brand")
    assert [j.task_id for j in window.jobs] == ["list/4", "list/2"]
    with pytest.raises(ValueError, match="cursor"):
        await store.list_jobs(after="not-a-cursor")


async def test_spend_summary_sums_exactly(store: Store) -> None:
    """spend_summary groups by day, team, model and status with exact integer sums."""
    day = 86_400.0
    big = 4_000_000_000_000_123
    await store.insert_job(new_job("s/1", team="a", estimated_cost_micros=big))
    await store.insert_job(new_job("s/2", team="a", estimated_cost_micros=7))
    await store.insert_job(new_job("s/3", team="b", estimated_cost_micros=None))
    await store.insert_job(
        new_job(
            "s/4", team="b", submitted_at=T0 + day, pinned_slug="kling/v2", estimated_cost_micros=5
        )
    )
    await store.insert_job(new_job("s/5", submitted_at=T0 + 3 * day, estimated_cost_micros=1))
    await store.observe("s/1", "success", T0 + 60, final_cost_micros=big - 3)
    total = await store.spend_summary(T0, T0 + 2 * day)
    assert len(total) == 1
    assert (total[0].jobs, total[0].unpriced_jobs) == (4, 1)
    assert total[0].estimated_cost_micros == big + 12
    assert total[0].final_cost_micros == big - 3
    by_team = await store.spend_summary(T0, T0 + 2 * day, ["team"])
    assert [(r.team, r.jobs, r.estimated_cost_micros) for r in by_team] == [
        ("a", 2, big + 7),
        ("b", 2, 5),
    ]
    rows = await store.spend_summary(T0, T0 + 2 * day, ["day", "model", "status"])
    assert [(r.day, r.model, r.status, r.jobs) for r in rows] == [
        ("2026-01-01", "minimax/hailuo-02-t2v", "pending", 2),
        ("2026-01-01", "minimax/hailuo-02-t2v", "success", 1),
        ("2026-01-02", "kling/v2", "pending", 1),
    ]
    assert await store.spend_summary(T0 + 10 * day, T0 + 11 * day) == []
    with pytest.raises(ValueError, match="group_by"):
        await store.spend_summary(T0, T0 + day, ["caller"])  # type: ignore[list-item]


async def test_in_flight_by_model_counts_non_terminal(store: Store) -> None:
    """in_flight_by_model counts only jobs that have not reached a terminal status."""
    await store.insert_job(new_job("f/1"))
    await store.insert_job(new_job("f/2"))
    await store.insert_job(new_job("f/3", pinned_slug="kling/v2"))
    await store.observe("f/2", "success", T0 + 9)
    assert await store.in_flight_by_model() == {"minimax/hailuo-02-t2v": 1, "kling/v2": 1}


async def test_observe_counts_batched_polls(store: Store) -> None:
    """An observation can stand for several client polls that saw no change."""
    await store.insert_job(new_job("batch/1"))
    await store.observe("batch/1", "pending", T0 + 1, source="client", polls=4)
    transition = await store.observe("batch/1", "processing", T0 + 2, source="client")
    assert transition.job.client_polls == 5


async def test_reservation_id_round_trips(store: Store) -> None:
    """A job's reservation id is stored at insert and read back by every job read."""
    await store.insert_job(new_job("res/1", reservation_id="rsv-1", next_poll_at=T0))
    await store.insert_job(new_job("res/2"))
    job = await store.get_job("res/1")
    assert job is not None
    assert job.reservation_id == "rsv-1"
    assert (await store.get_job("res/2") or job).reservation_id is None
    page = await store.list_jobs()
    assert {j.task_id: j.reservation_id for j in page.jobs} == {"res/1": "rsv-1", "res/2": None}
    leased = await store.lease_due("w", T0 + 1, 10, 30.0)
    assert [j.reservation_id for j in leased] == ["rsv-1"]
    step = await store.observe("res/1", "success", T0 + 2, final_cost_micros=5)
    assert step.job.reservation_id == "rsv-1"
