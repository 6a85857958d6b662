"""The retry policy: which failures are retried, and how long to wait. Pure functions.

Three buckets (ARCHITECTURE.md, Retry buckets):

- ``TRANSIENT``: nothing was created upstream or the upstream said so (connect
  errors before the request was sent, 429, some 5xx): retried with exponential
  backoff and jitter, bounded in attempts and total time;
- ``PERMANENT``: the upstream refused the request (400, 401, 402, 403, 404,
  422, ...): surfaced at once, never retried;
- ``UNKNOWN``: the request was sent and no usable answer came back: a paid
  submit in this bucket is never resent.
"""

from __future__ import annotations

import email.utils
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass


class Bucket(enum.StrEnum):
    SUCCESS = "success"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


class Failure(enum.StrEnum):
    """What went wrong with one attempt, as the retry policy sees it."""

    CONNECT = "connect_error"  # the request never left: DNS, refused, connect timeout
    SENT_NO_RESPONSE = "reset"  # sent, then the connection dropped
    READ_TIMEOUT = "timeout"  # sent, no answer in time
    MALFORMED = "malformed"  # 2xx with an unusable body
    TOO_LARGE = "too_large"  # the answer exceeded the response cap


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    base_delay: float
    max_delay: float
    total_seconds: float
    jitter: float
    retry_statuses: frozenset[int]


# Statuses that say the upstream definitely did not act on a request (as the
# official client reads them); any other non-2xx leaves a paid submit unknown.
DEFINITE_REJECTIONS = frozenset({400, 401, 402, 403, 404, 405, 413, 415, 422, 429})


# Read once: in Python 3.11 every ``Bucket.X`` is a descriptor call (about 1,000 CPU
# instructions), and ``classify_status`` runs once per upstream answer.
_SUCCESS, _TRANSIENT = Bucket.SUCCESS, Bucket.TRANSIENT
_PERMANENT, _UNKNOWN = Bucket.PERMANENT, Bucket.UNKNOWN


def classify_status(status: int, retry_statuses: frozenset[int]) -> Bucket:
    if 200 <= status < 300:
        return _SUCCESS
    if status in retry_statuses:
        return _TRANSIENT
    if status in DEFINITE_REJECTIONS:
        return _PERMANENT
    return _UNKNOWN


def classify_failure(failure: Failure, *, idempotent: bool) -> Bucket:
    """A transport failure's bucket; for idempotent requests (polls) any failure is transient."""
    if failure is Failure.CONNECT or idempotent:
        return Bucket.TRANSIENT
    return Bucket.UNKNOWN


def backoff_delay(attempt: int, base: float, cap: float, jitter: float, unit: float) -> float:
    """Delay before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped.

    ``unit`` is a random number in [0, 1) supplied by the caller; the delay is
    spread uniformly over ``±jitter`` of its nominal value, then capped again.
    """
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    nominal = min(cap, base * math.pow(2, attempt - 1))
    spread = nominal * jitter * (2 * unit - 1)
    return max(0.0, min(cap, nominal + spread))


def server_delay(headers: Mapping[str, str], now: float) -> float | None:
    """The wait the upstream asked for.

    ``Retry-After`` (seconds or an HTTP date) first, else ``X-RateLimit-Reset``
    (epoch seconds).
    """
    retry_after = headers.get("Retry-After")
    if retry_after:
        text = retry_after.strip()
        if text.isdigit():
            return float(text)
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - now)
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            return None
    return None


def next_delay(
    policy: RetryPolicy,
    attempt: int,
    elapsed: float,
    unit: float,
    asked: float | None = None,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or ``None`` to stop retrying.

    Stops when the attempts are used up, or when waiting would end past the
    policy's total time. A delay the server asked for is honoured when it fits.
    """
    if attempt >= policy.max_attempts:
        return None
    delay = backoff_delay(attempt, policy.base_delay, policy.max_delay, policy.jitter, unit)
    if asked is not None:
        delay = max(delay, asked)
    if elapsed + delay > policy.total_seconds:
        return None
    return delay
