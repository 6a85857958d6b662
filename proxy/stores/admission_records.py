"""Records of the admission queue (``proxy.stores._admission``, ``proxy.admission``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from proxy.stores.records import Intent, JobRecord, JobStatus, NewJob

QUEUE_PREFIX = "q-"


class QueueState(enum.StrEnum):
    QUEUED = "queued"  # waiting for a slot (or for its backoff after an upstream 429)
    DISPATCHING = "dispatching"  # its intent is written; the submit is being sent
    DISPATCHED = "dispatched"  # the upstream created ``task_id``
    UNKNOWN = "unknown"  # sent without a usable answer: ``task_id`` is the unknown: record
    FAILED = "failed"  # the upstream definitely refused it; holds released
    EXPIRED = "expired"  # waited past the team's max wait; holds released
    CANCELLED = "cancelled"  # DELETE by its submitter; holds released

    @property
    def waiting(self) -> bool:
        return self in (QueueState.QUEUED, QueueState.DISPATCHING)


class Admission(enum.StrEnum):
    """What ``admission_admit`` decided for a submit."""

    SEND = "send"  # a slot was free and nobody queued ahead: the intent is written, send now
    QUEUED = "queued"  # the queue row is written and holds the request's money and key
    FULL = "full"  # the team's queue is at its maximum: nothing written


class Cancel(enum.StrEnum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    TOO_LATE = "too_late"  # already dispatched (or finished)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedSubmit:
    """One accepted submit held by the admission queue.

    ``path`` is the upstream request target; ``headers`` the forwarded client headers
    (never a credential: the dispatcher sends with the proxy's own upstream key);
    ``job`` what the ledger records once the upstream names the task.
    """

    queue_id: str
    team: str  # "" when the caller has no team
    caller: str
    state: QueueState
    enqueued_at: float
    not_before: float
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    job: NewJob
    idempotency_scope: str | None = None
    idempotency_key: str | None = None
    reservation_id: str | None = None
    slot_reservation_id: str | None = None
    intent_id: str | None = None
    task_id: str | None = None
    attempts: int = 0
    dispatched_at: float | None = None
    finished_at: float | None = None
    error: str | None = None

    @property
    def model_id(self) -> str:
        """The model id the upstream puts in its answers (``provider-model``; inferred)."""
        return self.job.pinned_slug.replace("/", "-", 1)


_LEFT_UNSENT = {
    QueueState.FAILED: "the upstream refused the queued submit",
    QueueState.EXPIRED: "the submit waited in the admission queue past the team's maximum",
}


def row_as_job(row: QueuedSubmit) -> JobRecord:
    """The row as the job it will be (its task id is the queue id until dispatched):
    ``pending`` while it waits, ``failed`` once refused or expired in the queue."""
    job = row.job
    failed = row.state in _LEFT_UNSENT
    return JobRecord(
        task_id=row.queue_id, caller=job.caller, pinned_slug=job.pinned_slug,
        submitted_at=job.submitted_at, status=JobStatus.FAILED if failed else JobStatus.PENDING,
        team=job.team, project=job.project, alias=job.alias,
        estimated_cost_micros=job.estimated_cost_micros,
        terminal_at=row.finished_at if failed else None,
        error_reason=(row.error or _LEFT_UNSENT[row.state]) if failed else None,
        callback_url=job.callback_url, account=job.account,
        api=job.api, api_ref=job.api_ref, api_request=job.api_request,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Per team: queued rows and the enqueue time of the oldest."""

    team: str
    depth: int
    oldest_enqueued_at: float | None


@dataclass(frozen=True, slots=True)
class QueueHead:
    """A queued row, without its body: what the dispatcher orders."""

    queue_id: str
    team: str
    caller: str
    enqueued_at: float
    account: str | None = None  # the Modellix account billed


@dataclass(frozen=True, slots=True)
class DispatchClaim:
    """A row the dispatcher may send now, and the intent written for that send."""

    row: QueuedSubmit
    intent: Intent


def is_queue_id(task_id: str) -> bool:
    """A proxy-issued queue id: ``q-`` and 32 lowercase hex digits."""
    rest = task_id[len(QUEUE_PREFIX) :]
    return (
        task_id.startswith(QUEUE_PREFIX)
        and len(rest) == 32
        and all(c in "0123456789abcdef" for c in rest)
    )
