"""Unit tests of the pure lifecycle rules every backend applies."""

from __future__ import annotations

import pytest

from proxy.stores.records import JobRecord, JobStatus
from proxy.stores.transitions import apply_observation, moves_forward, parse_status

S = JobStatus


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [
        (S.UNKNOWN, S.PENDING, True),
        (S.PENDING, S.PROCESSING, True),
        (S.PENDING, S.SUCCESS, True),
        (S.PROCESSING, S.FAILED, True),
        (S.PROCESSING, S.PENDING, False),
        (S.PENDING, S.PENDING, False),
        (S.SUCCESS, S.FAILED, False),
        (S.FAILED, S.EXPIRED, False),
        (S.EXPIRED, S.SUCCESS, False),
    ],
)
def test_moves_forward(current: JobStatus, new: JobStatus, expected: bool) -> None:
    """Only later lifecycle stages move a job, and nothing moves a terminal one."""
    assert moves_forward(current, new) is expected


def test_parse_status_is_lenient_about_case_only() -> None:
    """Upstream status strings are matched case-insensitively; others are unknown."""
    assert parse_status(" SUCCESS ") is S.SUCCESS
    assert parse_status("queued") is None


def test_watcher_observation_keeps_client_poll_time() -> None:
    """A watcher poll counts as a watcher poll and leaves last_client_poll_at alone."""
    job = JobRecord(task_id="t", caller="c", pinned_slug="m", submitted_at=0.0, status=S.PENDING)
    step = apply_observation(job, "processing", 5.0, source="watcher", defer_until=99.0)
    assert (step.job.watcher_polls, step.job.client_polls) == (1, 0)
    assert step.job.last_client_poll_at is None
    assert step.job.next_poll_at is None
