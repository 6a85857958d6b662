"""The documents a ``q-`` id answers with, in the upstream's own envelope. Pure functions.

A queued submit is ``pending`` to the client until dispatched; afterwards the upstream
task's own poll answer is passed on with ``data.task_id`` set back to the ``q-`` id (the
official CLI checks that a poll answers the id it asked for).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from proxy.stores.admission_records import QueuedSubmit, QueueState


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def task_url(origin: str, task_id: str) -> str:
    return f"{origin}/api/v1/tasks/{quote(task_id, safe='')}"


def queued_answer(queue_id: str, model_id: str, origin: str) -> bytes:
    """The submit answer for a queued submit: what the upstream answers for a new task."""
    return _dump(
        {
            "code": 0,
            "message": "success",
            "data": {
                "status": "pending",
                "task_id": queue_id,
                "model_id": model_id,
                "get_result": {"method": "GET", "url": task_url(origin, queue_id)},
            },
        }
    )


def waiting_doc(row: QueuedSubmit) -> bytes:
    """A poll answer while the submit waits (queued, or being sent): ``pending``."""
    return _dump(
        {
            "code": 0,
            "message": "success",
            "data": {"status": "pending", "task_id": row.queue_id, "model_id": row.model_id},
        }
    )


def failed_doc(row: QueuedSubmit) -> bytes:
    """A poll answer for a submit that left the queue without a task (refused, expired,
    cancelled): ``failed``, the reason in ``message`` as the upstream puts it."""
    return _dump(
        {
            "code": 0,
            "message": row.error or _default_message(row.state),
            "data": {"status": "failed", "task_id": row.queue_id, "model_id": row.model_id},
        }
    )


def _default_message(state: QueueState) -> str:
    if state is QueueState.CANCELLED:
        return "Cancelled: the submit was cancelled while queued; nothing was bought"
    if state is QueueState.EXPIRED:
        return "Queue wait exceeded: the submit was not sent; nothing was bought"
    return "Generation failed: the upstream refused the queued submit"


def relabel(body: bytes, upstream_id: str, queue_id: str) -> bytes:
    """The upstream's poll answer for ``upstream_id``, answering for ``queue_id`` instead."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        return body
    data = doc["data"]
    if data.get("task_id") == upstream_id:
        data["task_id"] = queue_id
    return _dump(doc)


def upstream_message(body: bytes, status: int) -> str:
    """The message of an upstream refusal (``"<Category>: <detail>"``), bounded."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("message"), str) and doc["message"]:
        return str(doc["message"])[:500]
    return f"Upstream refused: the Modellix API answered HTTP {status} to the queued submit"


def cancelled_answer(row: QueuedSubmit) -> bytes:
    """The answer to ``DELETE`` of a queued submit."""
    return _dump(
        {
            "code": 0,
            "message": "success",
            "data": {"status": "cancelled", "task_id": row.queue_id, "model_id": row.model_id},
        }
    )
