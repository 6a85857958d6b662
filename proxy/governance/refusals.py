"""Refused submits: counted (metrics) and kept (the store), with the money they did not cost."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from proxy.config import Settings
from proxy.context import RequestContext
from proxy.errors import ProxyError
from proxy.jobs.pricing import estimate_micros, lookup
from proxy.runtime import Runtime
from proxy.stores.records import Refusal
from proxy.telemetry.metrics import OTHER, Metrics, usd

log = structlog.get_logger("proxy.refusals")


def avoided_cost(settings: Settings, runtime: Runtime, ctx: RequestContext) -> int | None:
    """The estimate of a refused submit, computed from its body when it got that far.

    ``None`` (unknown) when the body holds no valid priced quantity: a negative, infinite
    or absurd duration avoided no cost anyone could name.
    """
    if ctx.estimated_cost_micros is not None:
        return ctx.estimated_cost_micros
    if not ctx.pinned_slug or not isinstance(ctx.payload, dict):
        return None
    spec = runtime.catalog.get(ctx.pinned_slug)
    if spec is None:
        return None
    try:
        quantities = spec.quantities(ctx.payload)
    except (TypeError, ValueError, ArithmeticError):
        return None  # an invalid body may not even have quantities
    return estimate_micros(lookup(settings.pricing.models, ctx.pinned_slug), quantities)


class RefusalRecorder:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        runtime: Runtime,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._runtime = runtime
        self._clock = clock

    async def __call__(self, ctx: RequestContext, err: ProxyError) -> None:
        runtime = self._runtime
        model = runtime.labels.model(ctx.pinned_slug) if ctx.pinned_slug else OTHER
        reason = err.instance_reason
        self._metrics.rejections.labels(reason, model).inc()
        cost = avoided_cost(self._settings, runtime, ctx)
        if cost is not None and cost > 0:
            self._metrics.rejected_cost.labels(reason, model).inc(usd(cost))
        store = runtime.store
        if store is None:
            return
        caller = ctx.caller
        refusal = Refusal(
            at=self._clock(),
            reason=reason,
            caller=caller.identity if caller else None,
            team=caller.team if caller else None,
            project=caller.project if caller else None,
            model=ctx.pinned_slug,  # never the typed name: callers cannot invent rows
            estimated_cost_micros=cost,
        )
        try:
            await store.record_refusal(refusal)
        except Exception:  # the refusal stands; only its record for the report is lost
            log.exception("refusal.not_recorded", reason=reason)
