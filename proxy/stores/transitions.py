"""Pure rules of the job lifecycle, shared by every backend (no I/O, no clock).

A status moves only forward: ``unknown < pending < processing < terminal``, and a
terminal status never changes again. A backend reads the row under a lock, calls
``apply_observation`` and writes the result back in the same transaction; that
compare-and-set is what makes ``became_terminal`` true for exactly one caller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from proxy.stores.records import JobRecord, JobStatus, Source, StatusChange, Transition

_RANK: dict[JobStatus, int] = {
    JobStatus.UNKNOWN: 0,
    JobStatus.PENDING: 1,
    JobStatus.PROCESSING: 2,
    JobStatus.SUCCESS: 3,
    JobStatus.FAILED: 3,
    JobStatus.EXPIRED: 3,
}


def parse_status(raw: str) -> JobStatus | None:
    """The known status a raw upstream string names (case-insensitive), else ``None``."""
    try:
        return JobStatus(raw.strip().lower())
    except ValueError:
        return None


def moves_forward(current: JobStatus, new: JobStatus) -> bool:
    """Whether ``new`` is a later lifecycle stage than ``current``."""
    return not current.terminal and _RANK[new] > _RANK[current]


def apply_observation(
    job: JobRecord,
    raw_status: str,
    at: float,
    *,
    source: Source,
    output_urls: Sequence[str] | None = None,
    error_reason: str | None = None,
    final_cost_micros: int | None = None,
    cost_source: str | None = None,
    defer_until: float | None = None,
    polls: int = 1,
) -> Transition:
    """The job after one observation of ``raw_status`` at ``at``, and what changed.

    ``polls`` is how many polls this observation stands for (a caller may batch
    client polls that saw no change).
    """
    new = parse_status(raw_status)
    changed = new is not None and moves_forward(job.status, new)
    updates: dict[str, object] = {"last_seen_status": raw_status}
    if source == "client":
        updates["client_polls"] = job.client_polls + polls
        updates["last_client_poll_at"] = at
    elif source == "watcher":
        updates["watcher_polls"] = job.watcher_polls + polls
    if changed and new is not None:
        updates.update(_forward(job, new, at, output_urls, error_reason, final_cost_micros))
        if new.terminal and final_cost_micros is not None and cost_source is not None:
            updates["cost_source"] = cost_source
        updates["history"] = (*job.history, StatusChange(raw_status, at, source))
    elif new is None and raw_status != job.last_seen_status:
        updates["history"] = (*job.history, StatusChange(raw_status, at, source))
    nxt = updates.get("next_poll_at", job.next_poll_at)
    if defer_until is not None and isinstance(nxt, float | int) and not job.terminal:
        updates["next_poll_at"] = max(float(nxt), defer_until)
    after = dataclasses.replace(job, **updates)  # type: ignore[arg-type]
    return Transition(
        previous_status=job.status,
        new_status=after.status,
        changed=changed,
        became_terminal=changed and after.terminal,
        job=after,
    )


def _forward(
    job: JobRecord,
    new: JobStatus,
    at: float,
    output_urls: Sequence[str] | None,
    error_reason: str | None,
    final_cost_micros: int | None,
) -> dict[str, object]:
    updates: dict[str, object] = {"status": new}
    if new is JobStatus.PROCESSING and job.first_processing_at is None:
        updates["first_processing_at"] = at
    if output_urls is not None:
        updates["output_urls"] = tuple(output_urls)
    if error_reason is not None:
        updates["error_reason"] = error_reason
    if new.terminal:
        updates["terminal_at"] = at
        updates["next_poll_at"] = None
        updates["lease_owner"] = None
        updates["lease_expires_at"] = None
        if final_cost_micros is not None:
            updates["final_cost_micros"] = final_cost_micros
    return updates
