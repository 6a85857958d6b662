"""Paid submits: the whole walk is ``proxy.pipeline``'s; this handler runs it.

It reads the route into the context, runs the stages before the body, reads the body
under its limits, runs the rest (the tail sends, records and answers), and leaves every
hold a submit takes to ``SubmitLedger.holding``, the one place they end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDictProxy

from proxy.context import Forward, RequestContext
from proxy.errors import InternalError, ServiceUnavailable
from proxy.forwarding import public_origin, upstream_headers
from proxy.runtime import Runtime
from proxy.stages.body import BodyLimits, read_bounded
from proxy.state import CONTEXT, ROUTE, RUNTIME, SETTINGS


async def read_body(request: web.Request, limits: BodyLimits) -> bytes:
    """The submit body, refused (413) past its byte or JSON-separator budget."""
    chunks = request.content.iter_chunked(256 * 1024)
    return await read_bounded(chunks, request.content_length, limits)


async def handle_submit(request: web.Request) -> web.StreamResponse:
    ctx = request[CONTEXT]
    app = request.app
    route = request[ROUTE]
    if route.form is None or route.slug is None:
        raise InternalError("submit route without a model slug")
    runtime = app[RUNTIME]
    if runtime.tracker is None:
        raise ServiceUnavailable("the job ledger is not open yet", reason="store_unavailable")
    settings = app[SETTINGS]
    ctx.path_form = route.form
    ctx.task_type = route.task_type
    ctx.requested_slug = route.slug
    ctx.forward = Forward(
        query=request.raw_path.partition("?")[2],
        headers=CIMultiDictProxy(upstream_headers(request, settings, keep_length=False)),
        origin=public_origin(request, settings),
    )
    limits = runtime.pipeline.limits
    return await walk(runtime, ctx, lambda: read_body(request, limits))


async def walk(
    runtime: Runtime, ctx: RequestContext, read: Callable[[], Awaitable[bytes]]
) -> web.StreamResponse:
    """The one submit walk, for every door: the stages before the body, ``read`` (the body
    the upstream is sent, as the door makes it), the stages after, every hold ended by
    ``SubmitLedger.holding``."""
    if runtime.tracker is None:
        raise ServiceUnavailable("the job ledger is not open yet", reason="store_unavailable")
    pipeline = runtime.pipeline
    async with runtime.tracker.ledger.holding(ctx):
        for stage in pipeline.before_body:  # who is asking, before the body costs anything
            await stage(ctx)
        ctx.body = await read()
        for stage in pipeline.after_body:
            await stage(ctx)
            if ctx.answer is not None:
                return ctx.answer
    raise InternalError("the submit pipeline ended without an answer")
