"""The completion webhook of a video made through ``/v1/videos``, in OpenAI's event shape.

``{"id": "evt_...", "object": "event", "created_at": <terminal time>, "type":
"video.completed" | "video.failed", "data": {"id": "video_..."}}``, signed as every
delivery of the proxy is (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``,
``webhook-signature``), which is what ``client.webhooks.unwrap`` of the OpenAI SDKs
verifies with the caller's ``whsec_`` secret. The receiver fetches the video with
``videos.retrieve(data.id)``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from proxy.stores.records import JobRecord, JobStatus


def event_type(job: JobRecord) -> str:
    return "video.completed" if job.status is JobStatus.SUCCESS else "video.failed"


def event(job: JobRecord) -> dict[str, Any]:
    """The event for ``job``, which has just turned terminal."""
    digest = hashlib.sha256(job.task_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    at = job.terminal_at if job.terminal_at is not None else job.submitted_at
    return {
        "id": f"evt_{digest}",
        "object": "event",
        "created_at": int(at),
        "type": event_type(job),
        "data": {"id": job.api_ref},
    }


def event_body(job: JobRecord) -> str:
    return json.dumps(event(job), ensure_ascii=False, separators=(",", ":"))
