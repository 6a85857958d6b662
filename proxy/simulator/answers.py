"""The poll answer of a task: what ``GET /api/v1/tasks/{task_id}`` shows at a moment.

- ``pending`` / ``processing``: ``{"status", "task_id", "model_id"}``;
- ``success``: also ``result.resources`` (``type``, ``url``, ``format``, and ``width`` /
  ``height`` for video and images), ``duration`` (generation time, ms),
  ``result_expires_at`` (epoch ms) and ``billing``;
- ``failed`` / ``cancelled``: ``{"status", "task_id"}``, the reason in the envelope's
  ``message``, ``billing`` only when the failure was billed.

``billing`` is ``{"status": "succeeded", "amount": "0.2400"}``: exactly what was billed,
present when the task was charged and ``report_billing`` is on.
"""

from __future__ import annotations

from typing import Any

from proxy.simulator.pricing import amount_text
from proxy.simulator.state import Task


def task_answer(
    task: Task, now: float, *, retention: float, file_origin: str, report_billing: bool
) -> dict[str, Any]:
    """The full ``{"code", "message", "data"}`` answer for ``task`` at ``now``."""
    status = task.status_at(now)
    data: dict[str, Any]
    if status in ("failed", "cancelled"):
        data = {"status": status, "task_id": task.task_id}
        _add_billing(task, data, report_billing)
        return {"code": 0, "message": task.failure_message, "data": data}
    data = {"status": status, "task_id": task.task_id, "model_id": task.model_id}
    if status == "success":
        data["result"] = {"resources": resources(task, file_origin)}
        data["duration"] = round((task.done_at - task.created_at) * 1000)
        data["result_expires_at"] = round(task.expires_at(retention) * 1000)
        _add_billing(task, data, report_billing)
    return {"code": 0, "message": "success", "data": data}


def _add_billing(task: Task, data: dict[str, Any], report_billing: bool) -> None:
    if report_billing and task.billed:
        data["billing"] = {"status": "succeeded", "amount": amount_text(task.cost_micros)}


def resources(task: Task, file_origin: str) -> list[dict[str, Any]]:
    """The task's outputs: one per image, else one."""
    base = f"{file_origin}/sim/{task.task_id}"
    shape = task.shape
    ext = "jpg" if shape.format == "jpeg" else shape.format
    urls = [f"{base}.{ext}"]
    if task.kind == "image":
        urls = [f"{base}-{i}.{ext}" for i in range(task.outputs)]
    out: list[dict[str, Any]] = []
    for url in urls:
        item: dict[str, Any] = {"type": shape.type, "url": url, "format": shape.format}
        if shape.width is not None and shape.height is not None:
            item["width"], item["height"] = shape.width, shape.height
        out.append(item)
    return out
