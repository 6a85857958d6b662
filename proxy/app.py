"""``create_app(settings)``: the composition root. Nothing happens at import time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping

from aiohttp import web

from proxy import __version__
from proxy.admission.setup import start_admission
from proxy.background import start_background_tasks
from proxy.catalog.from_settings import build_catalog
from proxy.catalog.media import MediaChecker
from proxy.catalog.preflight import Preflight
from proxy.catalog.preflight import PreflightSettings as PreflightOptions
from proxy.catalog.upstream_models import refresher
from proxy.config import RetrySettings, Settings
from proxy.governance.refusals import RefusalRecorder
from proxy.governance.setup import start_governance
from proxy.handlers.dispatch import handle_api
from proxy.handlers.health import WriteProbe, healthz, readyz
from proxy.jobs.labels import Labels
from proxy.jobs.recovery import RecoverySweep
from proxy.jobs.tracker import JobTracker, Replica
from proxy.jobs.watcher import Watcher
from proxy.middleware import context_middleware, stamp_request_id
from proxy.pipeline import build_pipeline
from proxy.retention import Retention
from proxy.runtime import Runtime
from proxy.state import (
    METRICS,
    POLL_POLICY,
    READY,
    REJECTIONS,
    RUNTIME,
    SETTINGS,
    SUBMIT_POLICY,
    TRACING,
    UPSTREAM,
)
from proxy.stores import open_store
from proxy.stores.base import Store
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.price_points import cost_buckets
from proxy.telemetry.tracing import SCOPE as SERVICE_NAME
from proxy.telemetry.tracing import Tracing, setup_tracing
from proxy.upstream.client import Upstream
from proxy.upstream.retry import RetryPolicy


def retry_policies(retry: RetrySettings) -> tuple[RetryPolicy, RetryPolicy]:
    """The submit policy (careful) and the poll policy (free to retry)."""

    def policy(statuses: frozenset[int]) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=retry.max_attempts,
            base_delay=retry.base_delay_seconds,
            max_delay=retry.max_delay_seconds,
            total_seconds=retry.total_seconds,
            jitter=retry.jitter,
            retry_statuses=statuses,
        )

    return policy(retry.submit_retry_statuses), policy(retry.poll_retry_statuses)


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


def create_app(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    store: Store | None = None,
    clock: Callable[[], float] = time.time,
    replica_id: str | None = None,
    tracing: Tracing | None = None,
    environ: Mapping[str, str] | None = None,
    shared_gauges: bool = True,
) -> web.Application:
    """The client-facing application: ``/api/v1/...`` plus ``/healthz`` and ``/readyz``.

    ``store`` may be given already open (tests, several apps on one database);
    otherwise the app opens ``settings.store.url`` at start-up and closes it at the end.
    ``tracing`` may be given (its owner shuts it down); otherwise the app builds one from
    the ``OTEL_*`` variables in ``environ`` (none: nothing exported) and shuts it down.
    ``shared_gauges=False``: the watcher leaves the store-read gauges to the worker that
    exports them (``serve --workers``).
    """
    app = web.Application(middlewares=[context_middleware], client_max_size=settings.max_body_bytes)
    catalog, pinner = build_catalog(settings.models)
    metrics = metrics or Metrics(cost_buckets=cost_buckets(catalog, settings.pricing.models))
    metrics.build.info({"version": __version__})
    identity = settings.identity
    runtime = Runtime(
        catalog=catalog,
        pinner=pinner,
        labels=Labels.of(catalog.slugs(), identity.teams, identity.projects, pinner.listing),
        replica=Replica(replica_id or f"{socket.gethostname()}:{os.getpid()}"),
    )
    own_tracing = tracing is None
    if tracing is None:
        tracing = setup_tracing(SERVICE_NAME, environ or {}, service_version=__version__)
    upstream = Upstream(settings.upstream, metrics, tracing)
    app[TRACING] = tracing
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[UPSTREAM] = upstream
    app[RUNTIME] = runtime
    app[SUBMIT_POLICY], app[POLL_POLICY] = retry_policies(settings.upstream.retry)
    app[REJECTIONS] = RefusalRecorder(settings, metrics, runtime, clock)

    store_writable = WriteProbe(lambda: runtime.store)

    async def ready() -> dict[str, bool]:
        return {"upstream_session": upstream.started, "store": await store_writable()}

    app[READY] = ready

    async def parts(_app: web.Application) -> AsyncIterator[None]:
        await upstream.start()
        own_store = store is None
        try:
            opened = (
                store
                if store is not None
                else await open_store(
                    settings.store.url,
                    group_commit_max_writes=settings.store.group_commit_max_writes,
                )
            )
        except BaseException:  # an unreachable store stops the start: nothing left open
            await upstream.close()
            raise
        runtime.store = opened
        tracker = JobTracker(
            opened,
            settings,
            metrics,
            runtime.labels,
            runtime.replica,
            clock=clock,
            tracing=app[TRACING],
        )
        runtime.tracker = tracker
        recovery = RecoverySweep(
            opened, settings.recovery, metrics, runtime.replica.id, tracker.settler, clock=clock
        )
        await recovery.round()  # alive before holding anything, so no one sweeps it
        runtime.keyring, runtime.budgets = await start_governance(opened, settings, clock)
        preflight = (
            None
            if settings.models.preflight.mode == "off"
            else Preflight(preflight_options(settings))
        )
        media = MediaChecker(
            preflight, mode="warn" if settings.models.preflight.mode == "warn" else "refuse"
        )
        runtime.pipeline = build_pipeline(
            settings,
            catalog=catalog,
            pinner=pinner,
            store=opened,
            keyring=runtime.keyring,
            budgets=runtime.budgets,
            media=media,
            metrics=metrics,
            clock=clock,
            owner=runtime.replica.id,
        )
        loop = asyncio.get_running_loop()
        retention = Retention(opened, settings, metrics, runtime.replica.id, clock=clock)
        tasks = [
            loop.create_task(recovery.run(), name="recovery"),
            loop.create_task(retention.run(), name="retention"),
        ]
        if settings.watcher.enabled:
            runtime.watcher = Watcher(
                tracker,
                upstream,
                app[POLL_POLICY],
                settings,
                metrics,
                runtime.replica,
                clock=clock,
                budgets=runtime.budgets,
                catalog=catalog,
                shared_gauges=shared_gauges,
            )
            tasks.append(loop.create_task(runtime.watcher.run(), name="watcher"))
        tasks.extend(
            start_background_tasks(opened, settings, metrics, upstream, runtime.replica.id, clock)
        )
        tasks.extend(
            start_admission(runtime, opened, settings, metrics, upstream, app[SUBMIT_POLICY], clock)
        )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if preflight is not None:
                await preflight.close()
            await tracker.outbox.close(within=settings.shutdown_grace_seconds)
            await upstream.close()
            runtime.store = None
            if own_store:
                await opened.close()
            if own_tracing:  # flushing blocks: keep the loop (and any receiver on it) free
                await asyncio.to_thread(app[TRACING].shutdown)

    app.cleanup_ctx.append(parts)
    app.cleanup_ctx.append(refresher(pinner.listing, upstream, settings.upstream_api_key()))
    app.on_response_prepare.append(stamp_request_id)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_route("*", "/api/v1/{tail:.*}", handle_api)
    return app
