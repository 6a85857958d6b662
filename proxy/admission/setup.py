"""Start the admission queue when ``admission.enabled``: the desk and the dispatcher."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from proxy.admission.desk import AdmissionDesk, without_429
from proxy.admission.dispatcher import Dispatcher
from proxy.config import Settings
from proxy.runtime import Runtime
from proxy.stores.base import Store
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import Upstream
from proxy.upstream.retry import RetryPolicy

log = structlog.get_logger("proxy.admission")


def start_admission(
    runtime: Runtime,
    store: Store,
    settings: Settings,
    metrics: Metrics,
    upstream: Upstream,
    submit_policy: RetryPolicy,
    clock: Callable[[], float] = time.time,
) -> tuple[asyncio.Task[None], ...]:
    """Set ``runtime.admission`` and start the dispatcher; the caller owns the task."""
    if not settings.admission.enabled:
        return ()
    try:
        key = settings.upstream_api_key()
    except OSError as exc:
        log.error("admission.not_started", error=str(exc))
        return ()
    tracker = runtime.tracker
    if key is None or tracker is None:
        log.warning(
            "admission.disabled",
            reason="the admission queue sends with the proxy's own key: set upstream.api_key",
        )
        return ()
    runtime.admission = AdmissionDesk(
        settings, store, metrics, runtime.labels, tracker.ledger, submit_policy, clock=clock
    )
    dispatcher = Dispatcher(
        store,
        settings,
        metrics,
        runtime.labels,
        upstream,
        without_429(submit_policy),
        runtime.replica.id,
        key,
        cadence=tracker.cadence,
        outbox=tracker.outbox,
        clock=clock,
    )
    loop = asyncio.get_running_loop()
    return (loop.create_task(dispatcher.run(), name="admission-dispatcher"),)
