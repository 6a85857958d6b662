"""A video the admission queue still holds: found by its id, shown, cancelled.

With the admission queue on, a create beyond the team's upstream concurrency is queued (the
client gets its video, ``queued``, at once) and sent when a slot frees. The queue row is
named after the request (``q-<id>`` for ``video_<id>``) and carries the job to be, so until
the dispatch the video is read from the row: ``queued`` while it waits, ``failed`` if the
upstream refused it or it waited past the team's maximum. Once dispatched, the job in the
ledger is the video. A ``DELETE`` of a video still queued cancels it: nothing is bought; of
one that failed there, marks its row cancelled (its error kept), out of the owner's views.
"""

from __future__ import annotations

from proxy.stores.admission_records import (
    QUEUE_PREFIX,
    Cancel,
    QueueState,
    row_as_job,
)
from proxy.stores.base import Store
from proxy.stores.records import JobRecord, JobStatus

VIDEO_PREFIX = "video_"
_LEFT = (QueueState.FAILED, QueueState.EXPIRED)


def queue_id_of(video_id: str) -> str:
    return QUEUE_PREFIX + video_id.removeprefix(VIDEO_PREFIX)


def is_queued(job: JobRecord) -> bool:
    """A video read from its queue row (not dispatched: no upstream task yet)."""
    return job.task_id.startswith(QUEUE_PREFIX)


async def find(store: Store, video_id: str) -> JobRecord | None:
    """The video's job in the ledger, else its queue row as one; ``None`` if neither (or the
    row was cancelled)."""
    job = await store.job_by_ref(video_id)
    if job is not None:
        return job
    row = await store.admission_get(queue_id_of(video_id))
    if row is None or row.job.api_ref != video_id or row.state is QueueState.CANCELLED:
        return None
    if row.state in (QueueState.QUEUED, QueueState.DISPATCHING) or row.state in _LEFT:
        return row_as_job(row)
    return await store.job_by_ref(video_id)  # dispatched since the first read


async def cancel(store: Store, job: JobRecord, now: float) -> bool:
    """Cancel a video still queued (holds released, nothing bought), or take one refused or
    expired there out of its owner's views; False if it was sent meanwhile (its job is then
    in the ledger)."""
    if job.status is JobStatus.FAILED:
        return await store.admission_dismiss(job.task_id)
    done = await store.admission_cancel(
        job.task_id, f"Cancelled: DELETE /v1/videos/{job.api_ref} by its submitter", now
    )
    return done is Cancel.CANCELLED
