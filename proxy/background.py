"""Background work started next to the watcher: webhook deliveries, balance reconciliation.

``start_background_tasks`` returns the tasks; the app's cleanup context keeps them (strong
references) and cancels them at shutdown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from proxy.config import Settings
from proxy.governance.reconcile_balance import BalanceReconciler, upstream_reader
from proxy.stores.base import Store
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import Upstream
from proxy.webhooks.worker import DeliveryWorker

log = structlog.get_logger("proxy.background")


def start_background_tasks(
    store: Store,
    settings: Settings,
    metrics: Metrics,
    upstream: Upstream,
    owner: str,
    clock: Callable[[], float] = time.time,
) -> tuple[asyncio.Task[None], ...]:
    """Start what ``settings`` enables; the caller owns (and cancels) the tasks."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    if settings.webhooks.enabled:
        try:
            worker = DeliveryWorker(store, settings, metrics, owner, clock=clock)
        except (OSError, ValueError) as exc:  # an unreadable secret file: deliveries wait
            log.error("webhooks.not_started", error=str(exc))
        else:
            tasks.append(loop.create_task(worker.run(), name="webhook-deliveries"))
    if settings.balance.enabled:
        try:
            key = settings.upstream_api_key()
        except OSError as exc:  # an unreadable key file: reconciliation waits for a restart
            log.error("balance.not_started", error=str(exc))
            key = None
        if key is None:
            log.warning("balance.disabled", reason="balance reconciliation needs upstream.api_key")
        else:
            reconciler = BalanceReconciler(
                store, settings, metrics, owner, upstream_reader(upstream, key), clock=clock
            )
            tasks.append(loop.create_task(reconciler.run(), name="balance-reconciliation"))
    return tuple(tasks)
