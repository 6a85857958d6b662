"""``create_app(settings)``: the composition root. Nothing happens at import time."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping

from aiohttp import web

from proxy import __version__
from proxy.accounts import account_names
from proxy.catalog.from_settings import build_catalog
from proxy.catalog.schema_registry import SchemaRegistry
from proxy.config import RetrySettings, Settings
from proxy.governance.refusals import RefusalRecorder
from proxy.handlers.dispatch import handle_api
from proxy.handlers.health import WriteProbe, healthz, readyz
from proxy.handlers.schemas import handle_api_schema
from proxy.jobs.labels import Labels
from proxy.jobs.tracker import Replica
from proxy.lifecycle import lifecycle
from proxy.middleware import context_middleware, prepare
from proxy.openai_videos.routes import install as install_openai_videos
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
    """The client-facing application: ``/api/v1/...``, each model's pinned ``api_schema``
    (``/models/{provider}/{model}/api_schema``), ``/healthz`` and ``/readyz``.

    ``store`` may be given already open (tests, several apps on one database);
    otherwise the app opens ``settings.store.url`` at start-up and closes it at the end.
    ``tracing`` may be given (its owner shuts it down); otherwise the app builds one from
    the ``OTEL_*`` variables in ``environ`` (none: nothing exported) and shuts it down.
    ``shared_gauges=False``: this process leaves the store-read gauges to the worker that
    exports them (``serve --workers``). Start-up and shutdown: ``proxy.lifecycle``; the
    long-running components: ``proxy.background``.
    """
    app = web.Application(middlewares=[context_middleware], client_max_size=settings.max_body_bytes)
    catalog, pinner = build_catalog(settings.models)
    metrics = metrics or Metrics(cost_buckets=cost_buckets(catalog, settings.pricing.models))
    metrics.build.info({"version": __version__})
    identity = settings.identity
    runtime = Runtime(
        catalog=catalog,
        pinner=pinner,
        labels=Labels.of(
            catalog.slugs(),
            (*identity.teams, *(t for a in settings.upstream.accounts.values() for t in a.teams)),
            identity.projects,
            pinner.lists,
            account_names(settings),
        ),
        replica=Replica(replica_id or f"{socket.gethostname()}:{os.getpid()}"),
    )
    runtime.schemas = SchemaRegistry(
        settings.models.upstream_schemas, catalog, metrics, runtime.labels, clock=clock
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
    app.cleanup_ctx.append(
        lifecycle(store=store, clock=clock, exports_metrics=shared_gauges, own_tracing=own_tracing)
    )
    app.on_response_prepare.append(prepare)  # the request id, aiohttp's refusals enveloped
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_route("*", "/api/v1/{tail:.*}", handle_api)
    app.router.add_get("/models/{provider}/{model}/api_schema", handle_api_schema)  # and HEAD
    install_openai_videos(app, settings, runtime)  # OpenAI's /v1/videos over the same pipeline
    return app
