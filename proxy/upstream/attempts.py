"""Sending one logical request upstream, with retries only where they are safe."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from proxy.jsoncodec import loads
from proxy.upstream.client import Reply, TransportFailure, Upstream, sleep
from proxy.upstream.retry import (
    Bucket,
    RetryPolicy,
    classify_failure,
    classify_status,
    next_delay,
    server_delay,
)

# Read once: in Python 3.11 every ``Bucket.X`` is a descriptor call (about 1,000 CPU
# instructions), and these are compared once or twice per upstream answer.
_SUCCESS = Bucket.SUCCESS
_TRANSIENT = Bucket.TRANSIENT


class Outcome(NamedTuple):
    """What came of a logical request: the last reply or the failure, and the attempts made
    (a named tuple: the cheapest record to make, one per request)."""

    bucket: Bucket
    attempts: int
    upstream_seconds: float
    reply: Reply | None = None
    failure: TransportFailure | None = None
    # A 2xx poll answer's body as parsed to check it (a JSON object): read once, not again
    document: dict[str, Any] | None = None


async def send(
    upstream: Upstream,
    policy: RetryPolicy,
    method: str,
    path_qs: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    operation: str,
    idempotent: bool,
    rng: random.Random,
    on_retry: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> Outcome:
    """Attempt until success, a permanent answer, an unknown outcome or the policy says stop.

    A non-idempotent request (a paid submit) is resent only when the upstream
    definitely did not act on it: a connect failure, or a status in the
    policy's retry set.
    """
    started = clock()
    attempt = 0
    spent = 0.0
    while True:
        attempt += 1
        t0 = clock()
        try:
            reply = await upstream.fetch(
                method, path_qs, headers, body, operation, resend_count=attempt - 1
            )
        except TransportFailure as failure:
            spent += clock() - t0
            bucket = classify_failure(failure.failure, idempotent=idempotent)
            if bucket is _TRANSIENT:
                delay = next_delay(policy, attempt, clock() - started, rng.random())
                if delay is not None:
                    on_retry(failure.failure.value)
                    await sleep(delay)
                    continue
            return Outcome(bucket, attempt, spent, failure=failure)
        spent += reply.seconds
        bucket = classify_status(reply.status, policy.retry_statuses)
        document = None
        unusable = False
        if bucket is _SUCCESS and operation == "poll":
            document = _json_object(reply)
            unusable = document is None
            if unusable:  # a 2xx poll answer that is not a JSON object: as unusable as a 503
                bucket = _TRANSIENT
        if bucket is _TRANSIENT:
            asked = server_delay(reply.headers, wall())
            delay = next_delay(policy, attempt, clock() - started, rng.random(), asked)
            if delay is not None:
                on_retry("invalid_body" if unusable else str(reply.status))
                await sleep(delay)
                continue
        return Outcome(bucket, attempt, spent, reply, None, document)


def _json_object(reply: Reply) -> dict[str, Any] | None:
    """A reply's body if it is a JSON object (what every Modellix API answer is), else ``None``."""
    try:
        document = loads(reply.body)
    except ValueError:  # not JSON, or not UTF-8
        return None
    return document if isinstance(document, dict) else None
