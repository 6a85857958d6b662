"""``create_app(settings)``: the composition root. Nothing happens at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from proxy import __version__
from proxy.config import RetrySettings, Settings
from proxy.context import RequestContext
from proxy.errors import ProxyError
from proxy.handlers.dispatch import handle_api
from proxy.handlers.health import healthz, readyz
from proxy.middleware import context_middleware, stamp_request_id
from proxy.pipeline import ordered
from proxy.state import (
    METRICS,
    PIPELINE,
    POLL_POLICY,
    READY,
    REJECTIONS,
    SETTINGS,
    SUBMIT_POLICY,
    UPSTREAM,
)
from proxy.telemetry.metrics import OTHER, Metrics
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


def create_app(settings: Settings, *, metrics: Metrics | None = None) -> web.Application:
    """The client-facing application: ``/api/v1/...`` plus ``/healthz`` and ``/readyz``."""
    app = web.Application(middlewares=[context_middleware], client_max_size=settings.max_body_bytes)
    metrics = metrics or Metrics()
    metrics.build.info({"version": __version__})
    app[SETTINGS] = settings
    app[METRICS] = metrics
    upstream = Upstream(settings.upstream, metrics)
    app[UPSTREAM] = upstream
    app[SUBMIT_POLICY], app[POLL_POLICY] = retry_policies(settings.upstream.retry)
    app[PIPELINE] = ordered()

    def count_rejection(ctx: RequestContext, err: ProxyError) -> None:
        model = ctx.pinned_slug if ctx.pinned_slug else OTHER
        metrics.rejections.labels(err.instance_reason, model).inc()

    app[REJECTIONS] = count_rejection

    async def ready() -> dict[str, bool]:
        return {"upstream_session": upstream.started}

    app[READY] = ready

    async def upstream_session(_app: web.Application) -> AsyncIterator[None]:
        await upstream.start()
        yield
        await upstream.close()

    app.cleanup_ctx.append(upstream_session)
    app.on_response_prepare.append(stamp_request_id)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_route("*", "/api/v1/{tail:.*}", handle_api)
    return app
