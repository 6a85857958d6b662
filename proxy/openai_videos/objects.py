"""A job of the ledger as OpenAI's ``video`` object.

Status: ``pending`` is ``queued``; ``processing`` is ``in_progress``; ``success`` is
``completed``; ``failed`` and ``expired`` (and an upstream ``cancelled``) are ``failed``
with an ``error``. A submit whose outcome is unknown (sent, no answer: a task may exist,
the ledger holds its reservation until an operator reconciles it) is ``failed`` with the
code ``submit_outcome_unknown``.

``progress`` is honest: 0 while queued or failed, 100 once completed, and in between the
time since submit over the model's typical time (``openai_videos.typical_seconds``),
capped at 99: an estimate, never a reading from the upstream, which reports none.

``expires_at`` is the upstream's ``result_expires_at`` when a poll just read it, else the
end of the upstream's retention after the job finished (``watcher.retention_seconds``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from proxy.stores.records import JobRecord, JobStatus

OBJECT = "video"
_STATUS = {
    JobStatus.PENDING: "queued",
    JobStatus.PROCESSING: "in_progress",
    JobStatus.SUCCESS: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.EXPIRED: "failed",
    JobStatus.UNKNOWN: "failed",
}


@dataclass(frozen=True, slots=True)
class Timing:
    """What the progress estimate and the expiry rest on."""

    now: float
    typical_seconds: float
    retention_seconds: float


def asked(job: JobRecord) -> dict[str, Any]:
    """What the client asked (``api_request``), empty for a job of another door."""
    if not job.api_request:
        return {}
    try:
        value = json.loads(job.api_request)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def remixed_from(request: dict[str, Any]) -> str | None:
    """The source video of a remix (``POST /v1/videos/{id}/remix``), else ``None``."""
    source = request.get("remixed_from_video_id")
    return source if isinstance(source, str) else None


def status_of(job: JobRecord) -> str:
    return _STATUS[job.status]


def progress(job: JobRecord, timing: Timing) -> int:
    """0 queued or failed, 100 completed; in progress, elapsed over typical, at most 99."""
    if job.status is JobStatus.SUCCESS:
        return 100
    if job.status is not JobStatus.PROCESSING:
        return 0
    elapsed = max(0.0, timing.now - job.submitted_at)
    return max(1, min(99, int(100 * elapsed / timing.typical_seconds)))


def error_of(job: JobRecord) -> dict[str, str] | None:
    if job.status is JobStatus.UNKNOWN:
        return {
            "code": "submit_outcome_unknown",
            "message": "the submit was sent but no answer came back: a task may exist. It was "
            "not resent; the proxy's operator reconciles it.",
        }
    if job.status is JobStatus.EXPIRED:
        return {
            "code": "expired",
            "message": "the video did not finish within the upstream's retention.",
        }
    if job.status is JobStatus.FAILED:
        return {"code": "generation_failed", "message": job.error_reason or "generation failed"}
    return None


def video(job: JobRecord, timing: Timing, *, expires_at: float | None = None) -> dict[str, Any]:
    """The ``video`` object of ``job`` (made through ``/v1/videos``)."""
    request = asked(job)
    done = job.status is JobStatus.SUCCESS
    if expires_at is None and done and job.terminal_at is not None:
        expires_at = job.terminal_at + timing.retention_seconds
    return {
        "id": job.api_ref,
        "object": OBJECT,
        "created_at": int(job.submitted_at),
        "completed_at": int(job.terminal_at) if job.terminal_at is not None else None,
        "expires_at": int(expires_at) if done and expires_at is not None else None,
        "status": status_of(job),
        "progress": progress(job, timing),
        "model": str(request.get("model") or job.alias or job.pinned_slug),
        "prompt": request.get("prompt"),
        "seconds": str(request.get("seconds") or "auto"),
        "size": str(request.get("size") or "1280x720"),
        "remixed_from_video_id": remixed_from(request),
        "error": error_of(job),
    }


def fresh(video_id: str, created_at: float, request: dict[str, Any]) -> dict[str, Any]:
    """The ``video`` object of a submit just accepted (its job is ``pending``)."""
    return {
        "id": video_id,
        "object": OBJECT,
        "created_at": int(created_at),
        "completed_at": None,
        "expires_at": None,
        "status": "queued",
        "progress": 0,
        "model": str(request.get("model")),
        "prompt": request.get("prompt"),
        "seconds": str(request.get("seconds") or "auto"),
        "size": str(request.get("size") or "1280x720"),
        "remixed_from_video_id": remixed_from(request),
        "error": None,
    }
