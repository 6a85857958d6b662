"""The outermost layer: request id, context, access log, metrics, error rendering.

Every request passes through ``context_middleware``; it creates the
``RequestContext``, binds the request id to the log context, renders any
``ProxyError`` in the upstream's envelope, turns unexpected exceptions into a
500 that names the request id (logged once with its traceback), and writes one
access log line and the HTTP metrics.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from proxy.context import RequestContext, RouteKind
from proxy.errors import InternalError, ProxyError
from proxy.routing import classify
from proxy.state import CONTEXT, METRICS, REJECTIONS, ROUTE
from proxy.telemetry.metrics import OTHER

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,256}$")
log = structlog.get_logger("proxy.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _request_id(header: str | None) -> str:
    if header and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


def error_response(err: ProxyError, request_id: str) -> web.Response:
    headers = {**err.headers, "X-Request-Id": request_id}
    return web.json_response(err.envelope(request_id), status=err.status, headers=headers)


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    route = classify(request.method, request.raw_path.split("?", 1)[0])
    request_id = _request_id(request.headers.get("X-Request-Id"))
    correlation_id = request.headers.get("X-Correlation-Id") or request_id
    if not _REQUEST_ID.match(correlation_id):
        correlation_id = request_id
    ctx = RequestContext(
        request_id=request_id,
        correlation_id=correlation_id,
        route=route.kind,
        started_monotonic=started,
        received_at=time.time(),
        headers=request.headers,
    )
    request[CONTEXT] = ctx
    request[ROUTE] = route
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id, route=route.kind.value)
    status = 500
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            # aiohttp's own answers (404 outside /api/v1, 405): keep them, add our id.
            exc.headers["X-Request-Id"] = request_id
            raise
        except ProxyError as err:
            response = error_response(err, request_id)
            _count_rejection(request, ctx, err)
        except Exception:
            log.exception("request.failed")
            response = error_response(
                InternalError(f"unexpected error; request id {request_id}"), request_id
            )
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        _account(request, ctx, status, started)


async def stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer carries the request id, streamed ones included (``on_response_prepare``)."""
    ctx = request.get(CONTEXT)
    if ctx is not None:
        response.headers["X-Request-Id"] = ctx.request_id


def _count_rejection(request: web.Request, ctx: RequestContext, err: ProxyError) -> None:
    if ctx.route is not RouteKind.SUBMIT or ctx.upstream_attempts:
        return
    refusals = request.app.get(REJECTIONS)
    if refusals is not None:
        refusals(ctx, err)


def _account(request: web.Request, ctx: RequestContext, status: int, started: float) -> None:
    total = time.perf_counter() - started
    metrics = request.app[METRICS]
    route = ctx.route.value
    metrics.http_requests.labels(
        route, request.method if request.method.isalpha() else OTHER, str(status)
    ).inc()
    metrics.http_duration.labels(route).observe(total)
    if ctx.route is not RouteKind.OWN:
        metrics.overhead.labels(route).observe(max(0.0, total - ctx.upstream_seconds))
    log.info(
        "request",
        method=request.method,
        path=request.path,
        status=status,
        duration_ms=round(total * 1000, 3),
        upstream_ms=round(ctx.upstream_seconds * 1000, 3),
        upstream_attempts=ctx.upstream_attempts,
        correlation_id=ctx.correlation_id,
        model=ctx.pinned_slug,
        alias=ctx.alias,
        task_id=ctx.task_id,
    )
