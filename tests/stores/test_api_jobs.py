"""Jobs as another API door names them (``ApiJobStore``), on both engines: found by their
door id, paged per caller in both orders after a cursor, hidden from their owner only, the
door's fields kept through an intent and an operator's reconcile of an ``unknown``, and the
caller's submits the admission queue holds paged in the same order until they are sent."""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

from proxy.stores import Store
from proxy.stores.admission_records import Admission, QueuedSubmit, QueueState
from proxy.stores.records import Intent, JobRecord, JobStatus, unknown_task_id
from tests.stores.helpers import T0, new_job


def video(n: int, caller: str = "fp:owner", at: float = T0) -> dict[str, object]:
    return {
        "caller": caller,
        "submitted_at": at,
        "api": "openai",
        "api_ref": f"video_{n:032x}",
        "api_request": f'{{"prompt": "shot {n}"}}',
    }


async def test_found_by_ref_and_paged_per_caller(store: Store) -> None:
    """Five videos of one caller (two at the same instant), one of another, one Modellix job:
    pages of two cover the caller's five once, newest first or oldest first."""
    for n, at in enumerate((T0, T0 + 1, T0 + 1, T0 + 2, T0 + 3)):
        await store.insert_job(new_job(f"task-{n}", **video(n, at=at)))
    await store.insert_job(new_job("task-other", **video(9, caller="fp:someone")))
    await store.insert_job(new_job("task-modellix", caller="fp:owner"))
    found = await store.job_by_ref(f"video_{3:032x}")
    assert found is not None
    assert (found.task_id, found.api, found.api_request) == (
        "task-3",
        "openai",
        '{"prompt": "shot 3"}',
    )
    assert await store.job_by_ref("video_missing") is None
    orders: tuple[tuple[Literal["asc", "desc"], list[int]], ...] = (
        ("desc", [4, 3, 2, 1, 0]),
        ("asc", [0, 1, 2, 3, 4]),
    )
    for order, expected in orders:
        seen: list[str] = []
        after: JobRecord | None = None
        while True:
            page, more = await store.api_jobs_page(
                "fp:owner",
                "openai",
                limit=2,
                order=order,
                after=after,
            )
            seen += [job.task_id for job in page]
            if not more:
                break
            after = page[-1]
        assert seen == [f"task-{n}" for n in expected], order


async def test_hidden_from_its_owner_only(store: Store) -> None:
    """Hiding takes the job out of its owner's pages (once); another caller cannot hide it;
    the ledger keeps it."""
    await store.insert_job(new_job("task-0", **video(0)))
    ref = f"video_{0:032x}"
    assert not await store.hide_api_job(ref, "fp:someone", T0 + 5)
    assert await store.hide_api_job(ref, "fp:owner", T0 + 5)
    assert not await store.hide_api_job(ref, "fp:owner", T0 + 6)
    assert await store.api_jobs_page("fp:owner", "openai", limit=10) == ([], False)
    kept = await store.get_job("task-0")
    assert kept is not None
    assert kept.hidden_at == T0 + 5


async def test_door_fields_survive_unknown_and_reconcile(store: Store) -> None:
    """An intent of a video that turns ``unknown`` keeps its door id, and so does the job an
    operator attaches to it."""
    job = new_job("unknown:intent-1", **video(1), status=JobStatus.PENDING)
    intent = Intent(intent_id="intent-1", owner="replica-a", created_at=T0, job=job)
    await store.open_intent(intent)
    await store.intent_to_unknown(intent, "no answer")
    unknown = await store.job_by_ref(f"video_{1:032x}")
    assert unknown is not None
    assert unknown.status is JobStatus.UNKNOWN
    attached = await store.attach_task(unknown.task_id, "task-real", T0 + 10)
    assert attached is not None
    assert attached.task_id == "task-real"
    again = await store.job_by_ref(f"video_{1:032x}")
    assert again is not None
    assert (again.task_id, again.api, again.status) == ("task-real", "openai", JobStatus.PENDING)


async def _queue(store: Store, n: int, at: float, caller: str = "vk:owner") -> QueuedSubmit:
    """A video submit the admission queue takes (no slot is free: the limit is 0)."""
    fields = video(n, caller=caller, at=at) if n >= 0 else {"caller": caller, "submitted_at": at}
    job = new_job(
        unknown_task_id(f"req{n}"),
        team="studio",
        next_poll_at=None,
        callback_url="https://hooks.example.com/v",
        **fields,
    )
    intent = Intent(intent_id=f"req{n}", owner="replica-a", created_at=at, job=job)
    row = QueuedSubmit(
        queue_id=f"q-{abs(n):032x}" if n >= 0 else "q-" + "f" * 32,
        team="studio",
        caller=caller,
        state=QueueState.QUEUED,
        enqueued_at=at,
        not_before=at,
        path="/api/v1/minimax/hailuo-02-t2v/async",
        body=b'{"prompt": "x"}',
        job=job,
    )
    admitted = await store.admission_admit(intent, row, None, limit=0, max_queue=20, now=at)
    assert admitted is Admission.QUEUED
    return row


async def test_queued_videos_paged_in_order_until_sent(store: Store) -> None:
    """Four queued videos of one caller (two at the same instant) page in both orders after
    a cursor; another caller's, a Modellix submit's and a cancelled one are not listed; a
    refused one stays listed, with its ``video.failed`` webhook recorded, until its owner
    dismisses it; one dispatched to the ledger leaves the queue's pages; rows that expire
    record their webhooks (a Modellix submit's: its failed task document)."""
    rows = [await _queue(store, n, at) for n, at in enumerate((T0, T0 + 1, T0 + 1, T0 + 2))]
    await _queue(store, 7, T0 + 3, caller="vk:someone")
    modellix = await _queue(store, -1, T0 + 3)  # through /api/v1: no door id
    cancelled = await _queue(store, 8, T0 + 4)
    await store.admission_cancel(cancelled.queue_id, "cancelled", T0 + 5)
    orders: tuple[tuple[Literal["asc", "desc"], list[int]], ...] = (
        ("desc", [3, 2, 1, 0]),
        ("asc", [0, 1, 2, 3]),
    )
    for order, expected in orders:
        seen: list[str] = []
        after: tuple[float, str] | None = None
        while True:
            page = await store.api_queued_page(
                "vk:owner", "openai", limit=2, order=order, after=after
            )
            seen += [row.queue_id for row in page[:2]]
            if len(page) <= 2:
                break
            last = page[1].job
            after = (last.submitted_at, last.api_ref or "")
        assert seen == [rows[n].queue_id for n in expected], order
    claim = await store.admission_claim(rows[0].queue_id, "replica-a", T0 + 6, 1)
    assert claim is not None
    sent = dataclasses.replace(claim.intent.job, task_id="task-0", next_poll_at=T0 + 7)
    await store.admission_to_job(rows[0].queue_id, claim.intent, sent, T0 + 7)
    refused = await store.admission_claim(rows[3].queue_id, "replica-a", T0 + 8, 5)
    assert refused is not None
    assert await store.admission_refused(rows[3].queue_id, refused.intent, "no", T0 + 9)
    left = await store.api_queued_page("vk:owner", "openai", limit=10, order="asc")
    assert [row.queue_id for row in left] == [rows[n].queue_id for n in (1, 2, 3)]
    assert left[-1].state is QueueState.FAILED
    delivery = await store.get_delivery(rows[3].queue_id)
    assert delivery is not None
    assert json.loads(delivery.body)["type"] == "video.failed"
    assert json.loads(delivery.body)["data"] == {"id": f"video_{3:032x}"}
    assert await store.get_delivery(cancelled.queue_id) is None  # the owner's own cancel
    assert not await store.admission_dismiss(rows[1].queue_id)  # still queued
    assert await store.admission_dismiss(rows[3].queue_id)
    left = await store.api_queued_page("vk:owner", "openai", limit=10, order="asc")
    assert [row.queue_id for row in left] == [rows[n].queue_id for n in (1, 2)]
    expired = await store.admission_expire("studio", T0 + 100, "Queue wait exceeded", T0 + 101)
    assert len(expired) == 4  # rows 1 and 2, the other caller's, the Modellix submit
    video_event = await store.get_delivery(rows[1].queue_id)
    task_doc = await store.get_delivery(modellix.queue_id)
    assert video_event is not None
    assert task_doc is not None
    assert json.loads(video_event.body)["type"] == "video.failed"
    document = json.loads(task_doc.body)
    assert (document["message"], document["data"]["status"]) == ("Queue wait exceeded", "failed")
    assert document["data"]["task_id"] == modellix.queue_id
    job = await store.job_by_ref(f"video_{0:032x}")
    assert job is not None
    assert (job.task_id, job.submitted_at) == ("task-0", T0)  # same id, same place
