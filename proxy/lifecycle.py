"""What a proxy process opens at start-up, in order, and closes at the end.

1. the upstream client session;
2. the store (opened from ``store.url`` unless one was given), and the job tracker on it;
3. the first recovery round: this replica is alive before it holds anything, so no other
   replica's sweep can take its work for a dead one's;
4. the Modellix accounts (their keys read), the governance state (declared budgets
   upserted, the key ring, the budget book) and the
   submit pipeline built on it; the model list connected to the upstream; the pinned
   published schemas read from the store;
5. the roster of long-running components (``proxy.background``), started in order.

At the end: the roster stops (in reverse), then the preflight client, the upstream session,
the store (if this process opened it) and the tracer (if it built it). A failure half-way
closes what was opened before it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

from aiohttp import web

from proxy.accounts import AccountBook
from proxy.background import Parts, roster
from proxy.catalog.media import MediaChecker
from proxy.catalog.preflight import Preflight, PreflightOptions
from proxy.catalog.schema_fetch import SchemaFetcher
from proxy.catalog.upstream_models import upstream_fetch
from proxy.config import Settings
from proxy.governance.setup import start_governance
from proxy.jobs.recovery import RecoverySweep
from proxy.jobs.tracker import JobTracker
from proxy.pipeline import Tail, build_pipeline
from proxy.state import METRICS, POLL_POLICY, RUNTIME, SETTINGS, SUBMIT_POLICY, TRACING, UPSTREAM
from proxy.stores import open_store
from proxy.stores.base import Store
from proxy.webhooks.document import render_delivery


def preflight_options(settings: Settings) -> PreflightOptions:
    p = settings.models.preflight
    return PreflightOptions(
        mode="warn" if p.mode == "warn" else "refuse",
        allow=p.allow_hosts,
        max_redirects=p.max_redirects,
        head_bytes=p.max_bytes,
        read_timeout=p.timeout_seconds,
        total_timeout=p.timeout_seconds * 2,
        cache_ttl=p.cache_ttl_seconds,
    )


def lifecycle(
    *,
    store: Store | None,
    clock: Callable[[], float] = time.time,
    exports_metrics: bool = True,
    own_tracing: bool = True,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The application's cleanup context: start-up as above, then shutdown in reverse."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await _start(app, stack, store, clock, exports_metrics, own_tracing)
            yield

    return context


async def _start(
    app: web.Application,
    stack: AsyncExitStack,
    given: Store | None,
    clock: Callable[[], float],
    exports_metrics: bool,
    own_tracing: bool,
) -> None:
    settings, metrics, runtime, upstream = app[SETTINGS], app[METRICS], app[RUNTIME], app[UPSTREAM]
    if own_tracing:  # flushing blocks: keep the loop (and any receiver on it) free
        stack.push_async_callback(asyncio.to_thread, app[TRACING].shutdown)
    await upstream.start()
    stack.push_async_callback(upstream.close)
    store = given
    if store is None:
        store = await open_store(
            settings.store.url,
            group_commit_max_writes=settings.store.group_commit_max_writes,
            render_delivery=render_delivery,
        )
        stack.push_async_callback(store.close)
    runtime.store = store
    stack.callback(setattr, runtime, "store", None)
    tracker = JobTracker(
        store, settings, metrics, runtime.labels, runtime.replica, clock=clock, tracing=app[TRACING]
    )
    runtime.tracker = tracker
    recovery = RecoverySweep(
        store, settings.recovery, metrics, runtime.replica.id, tracker.settler, clock=clock
    )
    await recovery.round()  # alive before holding anything, so no one sweeps it
    runtime.accounts = AccountBook.from_settings(settings)
    runtime.keyring, runtime.budgets = await start_governance(
        store, settings, runtime.accounts, clock
    )
    runtime.pinner.lists.connect(
        upstream_fetch(upstream),
        {a.name: a.authorization for a in runtime.accounts.all()},
        _shared_list_account(runtime.accounts),
    )
    if runtime.schemas is not None and runtime.schemas.enabled:
        runtime.schemas.attach(store, SchemaFetcher(settings.models.upstream_schemas))
        stack.push_async_callback(runtime.schemas.close)
        await runtime.schemas.sync()  # the pins already in the store hold from the start
    mode = settings.models.preflight.mode
    preflight = None if mode == "off" else Preflight(preflight_options(settings))
    if preflight is not None:
        stack.push_async_callback(preflight.close)
    runtime.pipeline = build_pipeline(
        settings,
        catalog=runtime.catalog,
        pinner=runtime.pinner,
        store=store,
        keyring=runtime.keyring,
        budgets=runtime.budgets,
        media=MediaChecker(preflight, mode="warn" if mode == "warn" else "refuse"),
        metrics=metrics,
        schemas=runtime.schemas,
        tail=Tail(
            ledger=tracker.ledger,
            upstream=upstream,
            policy=app[SUBMIT_POLICY],
            admission=lambda: runtime.admission,
            rng=runtime.rng,
        ),
        clock=clock,
        owner=runtime.replica.id,
    )
    parts = Parts(
        settings=settings,
        metrics=metrics,
        store=store,
        upstream=upstream,
        runtime=runtime,
        tracker=tracker,
        recovery=recovery,
        submit_policy=app[SUBMIT_POLICY],
        poll_policy=app[POLL_POLICY],
        clock=clock,
        exports_metrics=exports_metrics,
    )
    runtime.roster = roster(parts)
    await runtime.roster.start()
    stack.push_async_callback(runtime.roster.stop)


def _shared_list_account(accounts: AccountBook) -> str | None:
    """The account whose model list is the shared one (pass-through callers'): the default
    account (or the first configured one) when there is one, else none (the caller's key)."""
    account = accounts.get(None) or next(iter(accounts.all()), None)
    return account.name if account is not None else None
