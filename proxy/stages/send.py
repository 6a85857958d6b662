"""Send the submit upstream, resent only while the upstream surely did not act on it.

The retry policy (``upstream.retry``) sorts each attempt into buckets; a paid submit is
never resent once it may have created a task. The outcome is left on the context for
``stages.record``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from proxy.admission.desk import AdmissionDesk
from proxy.context import RequestContext
from proxy.stages.admit import queueable, upstream_path, upstream_request_headers
from proxy.telemetry.metrics import Metrics
from proxy.upstream import attempts
from proxy.upstream.client import Upstream
from proxy.upstream.retry import RetryPolicy


class SendStage:
    name = "send"

    def __init__(
        self,
        upstream: Upstream,
        policy: RetryPolicy,
        admission: Callable[[], AdmissionDesk | None],
        metrics: Metrics,
        rng: random.Random,
    ) -> None:
        self._upstream = upstream
        self._policy = policy
        self._admission = admission
        self._metrics = metrics
        self._rng = rng

    async def __call__(self, ctx: RequestContext) -> None:
        desk = queueable(self._admission(), ctx)
        retries = self._metrics.upstream_retries
        outcome = await attempts.send(
            self._upstream,
            desk.policy if desk is not None else self._policy,  # a queueable 429 queues it
            "POST",
            upstream_path(ctx),
            upstream_request_headers(ctx),
            ctx.body,
            operation="submit",
            idempotent=False,
            rng=self._rng,
            on_retry=lambda reason: retries.labels("submit", reason).inc(),
        )
        ctx.outcome = outcome
        ctx.upstream_attempts = outcome.attempts
        ctx.upstream_seconds = outcome.upstream_seconds
