"""The admission queue's parts: the desk (admit or queue, used by submits) and the dispatcher."""

from __future__ import annotations

import time
from collections.abc import Callable

from proxy.admission.desk import AdmissionDesk, without_429
from proxy.admission.dispatcher import Dispatcher, DispatcherStore
from proxy.config import Settings
from proxy.jobs.tracker import JobTracker
from proxy.runtime import Runtime
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import Upstream
from proxy.upstream.retry import RetryPolicy


def admission_dispatcher(
    runtime: Runtime,
    tracker: JobTracker,
    store: DispatcherStore,
    settings: Settings,
    metrics: Metrics,
    upstream: Upstream,
    submit_policy: RetryPolicy,
    clock: Callable[[], float] = time.time,
) -> Dispatcher:
    """Set ``runtime.admission`` (submits start queueing) and build the dispatcher that sends
    what is queued with the key of each submit's Modellix account (``runtime.accounts``)."""
    runtime.admission = AdmissionDesk(
        settings,
        store,
        metrics,
        runtime.labels,
        tracker.ledger,
        submit_policy,
        runtime.accounts,
        clock=clock,
    )
    return Dispatcher(
        store,
        settings,
        metrics,
        runtime.labels,
        upstream,
        without_429(submit_policy),
        runtime.replica.id,
        runtime.accounts,
        cadence=tracker.cadence,
        outbox=tracker.outbox,
        clock=clock,
    )
