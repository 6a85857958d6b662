"""The outermost layer: request id, context, access log, metrics, error rendering.

Every request passes through ``context_middleware``; it creates the
``RequestContext``, makes it the request every log line names, renders any
``ProxyError`` in the upstream's envelope, turns unexpected exceptions into a
500 that names the request id (logged once with its traceback), and writes one
access log line and the HTTP metrics. When traces are exported the whole exchange
runs inside the request's SERVER span (named by the route template, never the raw
path), so the access line carries its trace and span ids and the duration histogram
an exemplar with its trace id. When nothing exports them, the request gets its ids
without the SDK (``LeanTrace``): the same ids in the log lines and the ``traceparent``
sent upstream, nothing else made.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from functools import lru_cache
from logging import INFO

import structlog
from aiohttp import web
from multidict import istr
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue
from prometheus_client import Counter, Histogram

from proxy.context import RequestContext, RouteKind
from proxy.envelope import envelope_refusal
from proxy.errors import InternalError, ProxyError, ServiceUnavailable
from proxy.money import sample
from proxy.routing import Route, classify
from proxy.state import CONTEXT, METRICS, REJECTIONS, ROUTE, TRACING
from proxy.stores.base import StoreUnavailableError
from proxy.telemetry import scope
from proxy.telemetry.children import child
from proxy.telemetry.logging import access_line, milliseconds
from proxy.telemetry.logging import enabled as logging_enabled
from proxy.telemetry.metrics import OTHER, Metrics
from proxy.telemetry.scope import LeanTrace
from proxy.telemetry.spans import server_span, set_error, set_response_status
from proxy.telemetry.traceparent import current_traceparent, trace_exemplar
from proxy.telemetry.tracing import Tracing

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,256}$")
# Header names as ``istr``: a case-insensitive look-up skips folding them each time.
REQUEST_ID_HEADER = istr("X-Request-Id")
CORRELATION_ID_HEADER = istr("X-Correlation-Id")
log = structlog.get_logger("proxy.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# RFC 9110 methods plus PATCH; anything else is "_OTHER" in spans (semconv), never a new name.
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
# The access line's values a client could have chosen (a header, the path, the body):
# the ones its redaction looks at. Every other value is the proxy's own.
CLIENT_CHOSEN = ("method", "path", "correlation_id", "alias", "task_id", "request_id")


def _request_id(header: str | None) -> str:
    if header and _REQUEST_ID.match(header):
        return header
    # 32 hex digits, as uuid4().hex, without the UUID object or a system call: an id for
    # logs and support, never a secret
    return random.getrandbits(128).to_bytes(16).hex()


def error_response(err: ProxyError, request_id: str) -> web.Response:
    headers = {**err.headers, "X-Request-Id": request_id}
    return web.json_response(err.envelope(request_id), status=err.status, headers=headers)


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    route = classify(request.method, request.raw_path)
    headers = request.headers
    request_id = _request_id(headers.get(REQUEST_ID_HEADER))
    correlation_id = headers.get(CORRELATION_ID_HEADER) or request_id
    if correlation_id is not request_id and not _REQUEST_ID.match(correlation_id):
        correlation_id = request_id
    # Positional: a call naming them matches each name against all the fields'.
    ctx = RequestContext(request_id, correlation_id, route.kind, started, time.time(), headers)
    request[CONTEXT] = ctx
    request[ROUTE] = route
    tracing = request.app[TRACING]
    token = scope.enter(ctx)  # log lines written meanwhile name the request
    try:
        if not tracing.exporting:
            # Sampled out: the request's ids (for log lines and the traceparent sent
            # upstream), made without the SDK; nothing attached, nothing recorded.
            ctx.trace = lean = LeanTrace.of_request(tracing.provider.id_generator, headers)
            if route.kind is not RouteKind.POLL:  # what a job records at submit; polls never
                ctx.traceparent = lean.traceparent()
            return await _respond(request, handler, ctx, None)
        with _server_span(request, route, request_id, tracing) as span:
            if route.kind is not RouteKind.POLL:
                ctx.traceparent = current_traceparent()
            return await _respond(request, handler, ctx, span)
    finally:
        scope.leave(token)


def _server_span(
    request: web.Request, route: Route, request_id: str, tracing: Tracing
) -> AbstractContextManager[Span]:
    """The request's recording SERVER span (traces are exported), current while it runs."""
    method = request.method if request.method in KNOWN_METHODS else "_OTHER"
    attributes: dict[str, AttributeValue] = {"modellix.request_id": request_id}
    if method == "_OTHER":
        attributes["http.request.method_original"] = request.method[:32]
    if request.remote:
        attributes["client.address"] = request.remote
    host, port = _server_address(request)
    return server_span(
        tracing,
        method=method,
        route=route_template(request, route),
        path=request.path,
        headers=request.headers,
        scheme=request.scheme,
        server_address=host,
        server_port=port,
        attributes=attributes,
    )


async def _respond(
    request: web.Request, handler: Handler, ctx: RequestContext, span: Span | None
) -> web.StreamResponse:
    """The handler's answer, refusals and failures in the envelope; then the request's
    span status (``span``: the recording one, if any), metrics and access line."""
    request_id = ctx.request_id
    status = 500
    error_type: str | None = None
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            # aiohttp's own answers (404 outside /api/v1, 405): keep them, add our id.
            exc.headers["X-Request-Id"] = request_id
            raise
        except ProxyError as err:
            response = error_response(err, request_id)
            await _count_rejection(request, ctx, err)
        except StoreUnavailableError as exc:
            # The ledger is down or stalled: say so (503), never a 500. Nothing was
            # bought: the submit path writes its intent before anything is sent.
            error_type = type(exc).__qualname__
            log.warning("request.store_unavailable", error=str(exc)[:300])
            response = error_response(
                ServiceUnavailable(
                    "the proxy's store is unavailable; nothing was submitted. Retry shortly",
                    reason="store_unavailable",
                    headers={"Retry-After": "1"},
                ),
                request_id,
            )
        except Exception as exc:
            error_type = type(exc).__qualname__
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
        total = time.perf_counter() - ctx.started_monotonic
        if span is not None:  # the exemplar is read while the span is current
            _finish_span(span, ctx, status, error_type)
            _account(request, ctx, status, span, total)
        else:
            # Once the answer is on its way: aiohttp writes it when this returns, and the
            # metrics and the access line run next, before the loop reads anything new
            # (so nothing that follows the answer can miss them); answers that came back
            # together are each written without waiting for the others' accounting.
            # (the loop from the request's task: get_running_loop costs a getpid system call)
            request.task.get_loop().call_soon(_account, request, ctx, status, None, total)


def route_template(request: web.Request, route: Route) -> str:
    """The low-cardinality route for span names and ``http.route`` ("" when none matched)."""
    if route.kind is not RouteKind.OWN:
        return route.name
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else ""


def _server_address(request: web.Request) -> tuple[str | None, int | None]:
    try:
        return request.url.host, request.url.port
    except ValueError:  # a Host header yarl cannot parse
        return None, None


def _finish_span(span: Span, ctx: RequestContext, status: int, error_type: str | None) -> None:
    if not span.is_recording():
        return
    set_response_status(span, status, server=True)
    if error_type is not None:
        set_error(span, error_type)
    for name, value in (
        ("modellix.task_id", ctx.task_id),
        ("modellix.model.pinned", ctx.pinned_slug),
        ("modellix.model.alias", ctx.alias),
    ):
        if value is not None:
            span.set_attribute(name, value)
    if ctx.upstream_attempts:
        span.set_attribute("modellix.upstream.attempts", ctx.upstream_attempts)
    if ctx.estimated_cost_micros is not None:
        span.set_attribute("modellix.cost.estimated_usd", sample(ctx.estimated_cost_micros))


async def prepare(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``, its one handler: every answer carries the request id,
    streamed ones included, and a plain-text refusal of aiohttp's own is put in the envelope."""
    ctx = request.get(CONTEXT)
    if ctx is not None:
        response.headers[REQUEST_ID_HEADER] = ctx.request_id
    envelope_refusal(response, ctx)


async def _count_rejection(request: web.Request, ctx: RequestContext, err: ProxyError) -> None:
    if ctx.route is not RouteKind.SUBMIT or ctx.upstream_attempts:
        return
    refusals = request.app.get(REJECTIONS)
    if refusals is not None:
        await refusals(ctx, err)


@lru_cache(maxsize=4096)
def _series(
    metrics: Metrics, route: str, method: str, status: int
) -> tuple[Counter, Histogram, Histogram | None]:
    """A request's metric children by its labels, found with one look-up (not one each):
    requests, duration and overhead (none for the proxy's own routes)."""
    return (
        child(metrics.http_requests, route, method, str(status)),
        child(metrics.http_duration, route),
        None if route == RouteKind.OWN.value else child(metrics.overhead, route),
    )


def _account(
    request: web.Request, ctx: RequestContext, status: int, span: Span | None, total: float
) -> None:
    """The request's metrics and access line; ``total``: its duration up to its answer."""
    metrics = request.app[METRICS]
    route = ctx.route.value
    method = request.method  # a cached property: read once
    requests, duration, overhead = _series(
        metrics, route, method if method in KNOWN_METHODS else OTHER, status
    )
    requests.inc()
    # Sampled-out spans (nothing exported) never give an exemplar: skip the look-up.
    exemplar = trace_exemplar() if span is not None else None
    duration.observe(total, exemplar)
    if overhead is not None:
        overhead.observe(max(0.0, total - ctx.upstream_seconds), exemplar)
    if not logging_enabled(INFO):  # skip building a line the level drops
        return
    fields = {
        "method": method,
        "path": request.path,
        "status": status,
        "duration_ms": milliseconds(total),
        "upstream_ms": milliseconds(ctx.upstream_seconds),
        "upstream_attempts": ctx.upstream_attempts,
        "correlation_id": ctx.correlation_id,
        "model": ctx.pinned_slug,
        "alias": ctx.alias,
        "task_id": ctx.task_id,
        # the request's own fields, as on every other line (``scope.request_fields``)
        "request_id": ctx.request_id,
        "route": route,
    }
    if ctx.caller is not None:
        fields["caller"] = ctx.caller.identity
    ids: tuple[int, int] | None = None
    if ctx.trace is not None:
        ids = (ctx.trace.trace_id, ctx.trace.span_id)
    elif span is not None and (context := span.get_span_context()).is_valid:
        ids = (context.trace_id, context.span_id)
    access_line(fields, ids, CLIENT_CHOSEN)
