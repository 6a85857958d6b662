"""What a completion webhook carries: the terminal task in the upstream's poll shape.

The body is the document a client would get from ``GET /api/v1/tasks/{task_id}`` once the
task is terminal (``{"code": 0, "message": ..., "data": {"status", "task_id", "result":
{"resources": [{"url"}]}}}``), plus a ``modellix_proxy`` object with what the proxy
recorded (model, costs, correlation id, times). It is built once, when the job turns
terminal, and stored with the delivery, so every retry sends the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from proxy.money import optional_sample
from proxy.openai_videos.events import event_body
from proxy.stores.records import JobRecord, JobStatus
from proxy.stores.webhook_records import RenderedDelivery

EVENT = "task.terminal"


def delivery_id(task_id: str) -> str:
    """The delivery's id (the ``Webhook-Id``): one per job, the same on every retry."""
    return "msg_" + hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def terminal_document(job: JobRecord) -> dict[str, Any]:
    """The terminal task document for ``job``."""
    data: dict[str, Any] = {"status": job.status.value, "task_id": job.task_id}
    message = "success"
    if job.status is JobStatus.SUCCESS:
        data["result"] = {"resources": [{"url": url} for url in job.output_urls]}
    elif job.error_reason:
        message = job.error_reason
    return {
        "code": 0,
        "message": message,
        "data": data,
        "modellix_proxy": {
            "event": EVENT,
            "model": job.pinned_slug,
            "alias": job.alias,
            "team": job.team,
            "project": job.project,
            "correlation_id": job.correlation_id,
            "request_id": job.request_id,
            "estimated_cost_usd": optional_sample(job.estimated_cost_micros),
            "final_cost_usd": optional_sample(job.final_cost_micros),
            "submitted_at": job.submitted_at,
            "terminal_at": job.terminal_at,
        },
    }


def terminal_body(job: JobRecord) -> str:
    """``terminal_document`` as compact JSON text (what is signed and sent)."""
    return json.dumps(terminal_document(job), ensure_ascii=False, separators=(",", ":"))


def render_delivery(job: JobRecord) -> RenderedDelivery:
    """The delivery of ``job``'s completion webhook, rendered when the job turns terminal
    (the store calls this inside that transaction: pass it to ``open_store``). A video made
    through OpenAI's door gets OpenAI's event shape (``proxy.openai_videos.events``)."""
    if job.api == "openai" and job.api_ref is not None:
        return RenderedDelivery(delivery_id(job.task_id), event_body(job))
    return RenderedDelivery(delivery_id(job.task_id), terminal_body(job))
