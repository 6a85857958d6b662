"""A video the admission queue still holds: found by its id, shown, cancelled.

With the admission queue on, a create beyond the team's upstream concurrency is queued (the
client gets its video, ``queued``, at once) and sent when a slot frees. The queue row is
named after the request (``q-<id>`` for ``video_<id>``) and carries the job to be, so until
the dispatch the video is read from the row: ``queued`` while it waits, ``failed`` if the
upstream refused it or it waited past the team's maximum. Once dispatched, the job in the
ledger is the video. A ``DELETE`` of a video still queued cancels it: nothing is bought.
"""

from __future__ import annotations

from proxy.stores.admission_records import QUEUE_PREFIX, Cancel, QueuedSubmit, QueueState
from proxy.stores.base import Store
from proxy.stores.records import JobRecord, JobStatus

VIDEO_PREFIX = "video_"
_FAILED = {
    QueueState.FAILED: "the upstream refused the queued submit",
    QueueState.EXPIRED: "the submit waited in the admission queue past the team's maximum",
}


def queue_id_of(video_id: str) -> str:
    return QUEUE_PREFIX + video_id.removeprefix(VIDEO_PREFIX)


def as_job(row: QueuedSubmit) -> JobRecord:
    """The queued row as the job it will be (its task id is the queue id until dispatched)."""
    job = row.job
    failed = row.state in _FAILED
    return JobRecord(
        task_id=row.queue_id, caller=job.caller, pinned_slug=job.pinned_slug,
        submitted_at=job.submitted_at, status=JobStatus.FAILED if failed else JobStatus.PENDING,
        team=job.team, project=job.project, alias=job.alias,
        estimated_cost_micros=job.estimated_cost_micros,
        terminal_at=row.finished_at if failed else None,
        error_reason=(row.error or _FAILED[row.state]) if failed else None,
        api=job.api, api_ref=job.api_ref, api_request=job.api_request,
    )  # fmt: skip


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
    if row.state in (QueueState.QUEUED, QueueState.DISPATCHING) or row.state in _FAILED:
        return as_job(row)
    return await store.job_by_ref(video_id)  # dispatched since the first read


async def cancel(store: Store, job: JobRecord, now: float) -> bool:
    """Cancel a video still queued (holds released, nothing bought); False if it was sent
    meanwhile (its job is then in the ledger)."""
    done = await store.admission_cancel(
        job.task_id, f"Cancelled: DELETE /v1/videos/{job.api_ref} by its submitter", now
    )
    return done is Cancel.CANCELLED
