"""The roster: every long-running component of a proxy process, in start order, in one place.

1. ``outbox``: ledger writes that waited out a store outage; flushed last. Always.
2. ``recovery``: heartbeat; a dead replica's intents become ``unknown``. Always.
3. ``retention``: purges what is past its keep-by time, one replica a round. Always.
4. ``model-list``: keeps the upstream's model list (and its prices) fresh. When the list is
   on and an account key is set (the default account's, else the first account's); else it
   is fetched on first need.
5. ``schemas``: keeps each model's published request schema pinned and fresh (one replica
   fetches, every replica reads the pins). ``models.upstream_schemas.enabled``.
6. ``watcher``: polls the jobs no client polls and settles terminals. ``watcher.enabled``.
7. ``expiry``: open jobs past the upstream's retention become ``expired``. Always.
8. ``gauges``: backlog, open and unknown jobs, finance and budget gauges. In the process
   that exports ``/metrics``.
9. ``webhooks``: signed completion deliveries. ``webhooks.enabled``.
10. ``balance``: balance reconciliation, one replica a round, one reconciler per Modellix
    account (``balance-<account>`` beside ``balance`` for the single-key proxy).
    ``balance.enabled`` and an account key.
11. ``admission``: sends queued submits as team and account slots free, one replica at a
    time, each with its account's key. ``admission.enabled`` and an account key.

They stop in reverse order: the dispatcher stops sending before anything it relies on goes,
and the outbox flushes after everything that may still write to it. What does not run is
recorded with the reason and logged at start (``roster.started``, ``not_running``). The
start-up steps that must come before any of them (the store, the first recovery round, the
governance state, the pipeline) are in ``proxy.lifecycle``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from proxy.admission.setup import admission_dispatcher
from proxy.catalog.schema_refresh import SchemaRefresher
from proxy.catalog.upstream_models import keep_fresh
from proxy.config import Settings
from proxy.governance.reconcile_balance import balance_reconcilers
from proxy.jobs.expiry import Expiry
from proxy.jobs.recovery import RecoverySweep
from proxy.jobs.tracker import JobTracker
from proxy.jobs.watcher import Watcher
from proxy.retention import Retention
from proxy.roster import Closing, Loop, Roster
from proxy.runtime import Runtime
from proxy.stores.base import Store
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.store_gauges import StoreGauges
from proxy.upstream.client import Upstream
from proxy.upstream.retry import RetryPolicy
from proxy.webhooks.worker import DeliveryWorker

log = structlog.get_logger("proxy.background")
NO_KEY = "needs upstream.api_key or upstream.accounts (the proxy's own upstream keys)"


@dataclass(frozen=True, slots=True)
class Parts:
    """What the components are built from: the assembled, started proxy."""

    settings: Settings
    metrics: Metrics
    store: Store
    upstream: Upstream
    runtime: Runtime
    tracker: JobTracker
    recovery: RecoverySweep
    submit_policy: RetryPolicy
    poll_policy: RetryPolicy
    clock: Callable[[], float] = time.time
    exports_metrics: bool = True  # False: a ``--workers`` worker whose /metrics nobody scrapes


def roster(parts: Parts) -> Roster:
    """Every component, in start order, each with the condition under which it runs."""
    p, s, runtime = parts, parts.settings, parts.runtime
    owner = runtime.replica.id
    accounts = runtime.accounts
    listing_account = accounts.get(None) or next(iter(accounts.all()), None)
    r = Roster()
    r.add(Closing("outbox", lambda: p.tracker.outbox.close(within=s.shutdown_grace_seconds)))
    r.add(Loop("recovery", p.recovery.run))
    retention = Retention(p.store, s, p.metrics, owner, clock=p.clock)
    r.add(Loop("retention", retention.run))

    listing = runtime.pinner.listing
    if not listing.enabled:
        r.skip("model-list", "models.upstream_list.enabled is false")
    elif not listing.settings.fetch_at_start:
        r.skip("model-list", "models.upstream_list.fetch_at_start is false: fetched on first need")
    elif listing_account is None:
        r.skip("model-list", NO_KEY + ": fetched on first need with the caller's key")
    else:
        credential = listing_account.authorization
        r.add(Loop("model-list", lambda: keep_fresh(listing, credential)))

    schemas = runtime.schemas
    if schemas is None or not schemas.enabled:
        r.skip("schemas", "models.upstream_schemas.enabled is false")
    else:
        refresher = SchemaRefresher(schemas, runtime.pinner, p.store, owner, clock=p.clock)
        r.add(Loop("schemas", refresher.run))

    if s.watcher.enabled:
        runtime.watcher = Watcher(
            p.tracker,
            p.upstream,
            p.poll_policy,
            s,
            p.metrics,
            runtime.replica,
            accounts=accounts,
            clock=p.clock,
        )
        r.add(Loop("watcher", runtime.watcher.run))
    else:
        r.skip("watcher", "watcher.enabled is false: jobs settle when their clients poll")
    r.add(Loop("expiry", Expiry(p.tracker, s.watcher, clock=p.clock).run))
    if p.exports_metrics:
        runtime.gauges = StoreGauges(
            p.store,
            s,
            p.metrics,
            runtime.labels,
            budgets=runtime.budgets,
            catalog=runtime.catalog,
            accounts=accounts,
            clock=p.clock,
        )
        r.add(Loop("gauges", runtime.gauges.run))
    else:
        r.skip("gauges", "another worker exports /metrics and reads them")

    if not s.webhooks.enabled:
        r.skip("webhooks", "webhooks.enabled is false")
    else:
        try:
            worker = DeliveryWorker(p.store, s, p.metrics, owner, clock=p.clock)
        except (OSError, ValueError) as exc:  # an unreadable secret file: deliveries wait
            log.error("webhooks.not_started", error=str(exc))
            r.skip("webhooks", f"the signing secret cannot be read: {exc}")
        else:
            r.add(Loop("webhooks", worker.run))

    if not s.balance.enabled:
        r.skip("balance", "balance.enabled is false")
    elif not accounts.all():
        log.warning("balance.disabled", reason="balance reconciliation " + NO_KEY)
        r.skip("balance", NO_KEY)
    else:
        reconcilers = balance_reconcilers(
            p.store, s, p.metrics, owner, p.upstream, accounts, p.clock
        )
        for reconciler in reconcilers:
            name = "balance" if reconciler.lease == "balance" else f"balance-{reconciler.label}"
            r.add(Loop(name, reconciler.run))

    if not s.admission.enabled:
        r.skip("admission", "admission.enabled is false")
    elif not accounts.all():
        log.warning("admission.disabled", reason="the admission queue sends with " + NO_KEY)
        r.skip("admission", NO_KEY)
    else:
        dispatcher = admission_dispatcher(
            runtime, p.tracker, p.store, s, p.metrics, p.upstream, p.submit_policy, p.clock
        )
        r.add(Loop("admission", dispatcher.run))
    return r
