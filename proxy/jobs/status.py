"""Reading a task answer: its status, sorted into the buckets users are told to use.

- in progress: ``pending``, ``processing`` (and look-alikes such as ``running``);
- blocked: refusals such as ``invalid_input`` or ``content_policy``: terminal,
  never to be retried as is (recorded as ``failed`` with the reason);
- terminal: ``success``, ``failed`` (and the synonyms the official client accepts).

Anything else is ``unrecognised``: counted and logged, the job stays where it
is and the watcher keeps polling it until a known status or expiry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from proxy.jobs.billing import charge_micros
from proxy.jsoncodec import loads
from proxy.stores.records import JobStatus


class Phase(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    TERMINAL = "terminal"
    UNRECOGNISED = "unrecognised"


_IN_PROGRESS = {
    "pending": JobStatus.PENDING,
    "queued": JobStatus.PENDING,
    "processing": JobStatus.PROCESSING,
    "running": JobStatus.PROCESSING,
    "in_progress": JobStatus.PROCESSING,
}
_SUCCESS = frozenset({"success", "succeeded", "completed"})
_FAILED = frozenset({"failed", "error", "canceled", "cancelled"})
_BLOCKED = frozenset(
    {
        "invalid_input",
        "content_policy",
        "content_policy_violation",
        "moderation",
        "rejected",
        "refused",
        "blocked",
    }
)


@dataclass(frozen=True, slots=True)
class TaskView:
    """What a task answer says, as far as the ledger cares."""

    raw_status: str
    bucket: Phase
    status: JobStatus | None  # None when unrecognised
    output_urls: tuple[str, ...]
    message: str | None
    charge_micros: int | None = None  # the upstream's billing.amount, on success


# A task answer (its document and ``data`` object), its raw status, that status sorted.
TaskState = tuple[dict[str, Any], dict[str, Any], str, Phase, JobStatus | None]


@lru_cache(maxsize=256)  # an upstream answers with a handful of spellings, again and again
def classify(raw: str) -> tuple[Phase, JobStatus | None]:
    name = raw.strip().lower()
    if name in _IN_PROGRESS:
        return Phase.IN_PROGRESS, _IN_PROGRESS[name]
    if name in _SUCCESS:
        return Phase.TERMINAL, JobStatus.SUCCESS
    if name in _FAILED:
        return Phase.TERMINAL, JobStatus.FAILED
    if name in _BLOCKED:
        return Phase.BLOCKED, JobStatus.FAILED
    return Phase.UNRECOGNISED, None


def _urls(data: dict[str, Any]) -> tuple[str, ...]:
    result = data.get("result")
    resources: Any = result.get("resources") if isinstance(result, dict) else data.get("resources")
    out: list[str] = []
    if isinstance(resources, list):
        for item in resources[:100]:
            url = item.get("url") if isinstance(item, dict) else item
            if isinstance(url, str) and len(url) <= 4096:
                out.append(url)
    return tuple(out)


def read_task(body: bytes) -> TaskView | None:
    """The task answer's status and outputs, or ``None`` if the body is not one."""
    try:
        doc = loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return None
    return task_view(doc)


def task_view(doc: object) -> TaskView | None:
    """``read_task`` of a body already parsed (``doc``)."""
    state = task_state(doc)
    return None if state is None else complete_view(state)


def task_state(doc: object) -> TaskState | None:
    """The status part of ``task_view``: what deciding whether an answer changes anything
    needs; ``complete_view`` reads the rest (outputs, message, charge) when it does."""
    if not isinstance(doc, dict):
        return None
    data = doc.get("data")
    if not isinstance(data, dict):
        return None
    raw = data.get("status")
    if not isinstance(raw, str) or not raw or len(raw) > 64:
        return None
    bucket, status = classify(raw)
    return doc, data, raw, bucket, status


def complete_view(state: TaskState) -> TaskView:
    """The ``TaskView`` of the answer whose ``task_state`` is ``state``."""
    doc, data, raw, bucket, status = state
    message = doc.get("message")
    if not isinstance(message, str) or message == "success":
        message = None
    charge = charge_micros(data) if status is JobStatus.SUCCESS else None
    return TaskView(raw, bucket, status, _urls(data), message[:1000] if message else None, charge)
