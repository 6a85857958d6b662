"""The retry policy: buckets and backoff arithmetic, without I/O."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.upstream.retry import (
    Bucket,
    Failure,
    RetryPolicy,
    backoff_delay,
    classify_failure,
    classify_status,
    next_delay,
    server_delay,
)

SUBMIT = frozenset({429, 500, 502, 503})
POLICY = RetryPolicy(
    max_attempts=3,
    base_delay=1.0,
    max_delay=8.0,
    total_seconds=20.0,
    jitter=0.2,
    retry_statuses=SUBMIT,
)


@pytest.mark.parametrize(
    ("status", "bucket"),
    [
        (200, Bucket.SUCCESS),
        (429, Bucket.TRANSIENT),
        (500, Bucket.TRANSIENT),
        (503, Bucket.TRANSIENT),
        (400, Bucket.PERMANENT),
        (401, Bucket.PERMANENT),
        (402, Bucket.PERMANENT),
        (404, Bucket.PERMANENT),
        (422, Bucket.PERMANENT),
        (504, Bucket.UNKNOWN),
        (408, Bucket.UNKNOWN),
        (409, Bucket.UNKNOWN),
        (302, Bucket.UNKNOWN),
    ],
)
def test_status_buckets_for_a_paid_submit(status: int, bucket: Bucket) -> None:
    """Each status lands in the bucket the architecture assigns it."""
    assert classify_status(status, SUBMIT) is bucket


def test_failure_after_sending_is_unknown_for_submits_and_transient_for_polls() -> None:
    """A sent-and-lost submit is never resent; a poll may be; connect errors are safe to retry."""
    assert classify_failure(Failure.CONNECT, idempotent=False) is Bucket.TRANSIENT
    for failure in (Failure.SENT_NO_RESPONSE, Failure.READ_TIMEOUT, Failure.MALFORMED):
        assert classify_failure(failure, idempotent=False) is Bucket.UNKNOWN
        assert classify_failure(failure, idempotent=True) is Bucket.TRANSIENT


def test_backoff_doubles_and_caps() -> None:
    """Without jitter the delay doubles per attempt and stops at the cap."""
    assert [backoff_delay(n, 1.0, 8.0, 0.0, 0.5) for n in range(1, 6)] == [1, 2, 4, 8, 8]


@given(attempt=st.integers(1, 30), unit=st.floats(0, 1, exclude_max=True))
def test_jitter_stays_within_bounds(attempt: int, unit: float) -> None:
    """Jittered delays stay within ±jitter of nominal and never exceed the cap."""
    nominal = min(8.0, 2.0 ** (attempt - 1))
    delay = backoff_delay(attempt, 1.0, 8.0, 0.2, unit)
    assert 0.8 * nominal - 1e-9 <= delay <= min(8.0, 1.2 * nominal) + 1e-9


def test_attempts_and_total_time_bound_retries() -> None:
    """Retries stop at the attempt limit and when the wait would pass the total time."""
    assert next_delay(POLICY, 1, 0.0, 0.5) == 1.0
    assert next_delay(POLICY, 3, 0.0, 0.5) is None
    assert next_delay(POLICY, 2, 19.5, 0.5) is None


def test_server_asked_delay_is_honoured_when_it_fits() -> None:
    """A Retry-After longer than the backoff is used; one past the total time stops retrying."""
    assert next_delay(POLICY, 1, 0.0, 0.5, asked=5.0) == 5.0
    assert next_delay(POLICY, 1, 0.0, 0.5, asked=60.0) is None


def test_server_delay_reads_retry_after_and_rate_limit_reset() -> None:
    """Retry-After in seconds or as a date, else X-RateLimit-Reset as epoch seconds."""
    now = 1_700_000_000.0
    assert server_delay({"Retry-After": "7"}, now) == 7.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert server_delay({"Retry-After": date}, now) == pytest.approx(30.0, abs=1.0)
    assert server_delay({"X-RateLimit-Reset": str(int(now + 12))}, now) == 12.0
    assert server_delay({"X-RateLimit-Reset": "garbage"}, now) is None
    assert server_delay({}, now) is None
