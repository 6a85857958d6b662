"""Jobs as another API door names them (``ApiJobStore``), on both engines: found by their
door id, paged per caller in both orders after a cursor, hidden from their owner only, and
the door's fields kept through an intent and an operator's reconcile of an ``unknown``."""

from __future__ import annotations

from typing import Literal

from proxy.stores import Store
from proxy.stores.records import Intent, JobRecord, JobStatus
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
