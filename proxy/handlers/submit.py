"""Paid submits: the pipeline's stages, then one careful upstream submit.

The order of the stages lives in ``proxy.pipeline``; this handler runs them,
sends the submit (resent only when the upstream surely did not act on it),
records the job before answering, and tells the client plainly when the
outcome is unknown.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import structlog
from aiohttp import web

from proxy.context import RequestContext
from proxy.errors import InternalError, ServiceUnavailable, UpstreamTimeout
from proxy.forwarding import public_origin, upstream_headers
from proxy.handlers.failures import transport_error
from proxy.handlers.poll import reply_headers
from proxy.money import exact
from proxy.routing import submit_path
from proxy.stages.body import BodyLimits, read_bounded
from proxy.state import CONTEXT, METRICS, ROUTE, RUNTIME, SETTINGS, SUBMIT_POLICY, UPSTREAM
from proxy.stores.base import HoldLostError, StoreError
from proxy.upstream import attempts
from proxy.upstream.retry import Bucket

log = structlog.get_logger("proxy.submit")
# What the official client accepts as a task id.
TASK_ID = re.compile(r"^[A-Za-z0-9._~:/+@=-]{1,512}$")


async def read_body(request: web.Request, limits: BodyLimits) -> bytes:
    """The submit body, refused (413) past its byte or JSON-separator budget."""
    chunks = request.content.iter_chunked(256 * 1024)
    return await read_bounded(chunks, request.content_length, limits)


def accepted_task_id(body: bytes) -> tuple[str | None, dict[str, Any] | None]:
    """The task id of a 2xx submit answer, or ``None`` when the answer is unusable."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        return None, None
    task_id = doc["data"].get("task_id")
    if isinstance(task_id, str) and TASK_ID.match(task_id):
        return task_id, doc
    return None, None


def _header_value(text: str) -> str:
    """Printable ASCII only, bounded: a header the proxy adds must never break an answer."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)[:1024]


def proxy_headers(ctx: RequestContext) -> dict[str, str]:
    out: dict[str, str] = {}
    if ctx.pinned_slug:
        out["X-Modellix-Proxy-Model"] = _header_value(ctx.pinned_slug)
    if ctx.alias:
        out["X-Modellix-Proxy-Alias"] = _header_value(ctx.alias)
    if ctx.estimated_cost_micros is not None:
        out["X-Modellix-Proxy-Estimated-Cost-USD"] = exact(ctx.estimated_cost_micros)
    if ctx.price_table_version:
        out["X-Modellix-Proxy-Price-Version"] = ctx.price_table_version
    out.update(ctx.budget_headers)
    if ctx.warnings:
        out["X-Modellix-Proxy-Warnings"] = _header_value("; ".join(ctx.warnings))
    return out


async def handle_submit(request: web.Request) -> web.StreamResponse:
    ctx = request[CONTEXT]
    app = request.app
    route = request[ROUTE]
    if route.form is None or route.slug is None:
        raise InternalError("submit route without a model slug")
    ctx.path_form = route.form
    ctx.task_type = route.task_type
    ctx.requested_slug = route.slug
    runtime = app[RUNTIME]
    pipeline = runtime.pipeline
    try:
        for stage in pipeline.before_body:  # who is asking, before the body costs anything
            await stage(ctx)
        ctx.body = await read_body(request, pipeline.limits)
        for stage in pipeline.after_body:
            await stage(ctx)
            if ctx.answer is not None:
                answer: web.StreamResponse = ctx.answer
                return answer
        return await _submit(request, ctx)
    finally:
        if runtime.tracker is not None:
            await runtime.tracker.ledger.finish(ctx)


async def _submit(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    metrics = app[METRICS]
    jobs = app[RUNTIME].tracker
    if jobs is None:
        raise ServiceUnavailable("the job ledger is not open yet", reason="store_unavailable")
    headers = upstream_headers(request, settings, keep_length=False)
    if ctx.upstream_authorization is not None:
        headers["Authorization"] = ctx.upstream_authorization
    slug = ctx.pinned_slug or ctx.requested_slug
    if slug is None or ctx.path_form is None:
        raise InternalError("submit without a model slug")
    path = submit_path(ctx.path_form, slug, ctx.task_type)
    query = request.raw_path.partition("?")[2]
    if query:
        path = f"{path}?{query}"
    admission = app[RUNTIME].admission
    queueable = admission is not None and admission.applies(ctx)
    origin = public_origin(request, settings)
    try:
        # Durable before anything leaves: if the process dies from here on, the intent
        # becomes an `unknown` record, never a purchase nobody knows of.
        if admission is not None and queueable:
            # ... or, beyond the team's upstream concurrency, a durable queue row
            queued = await admission.admit(ctx, path, headers, origin, proxy_headers(ctx))
            if queued is not None:
                return queued
        else:
            await jobs.ledger.open_intent(ctx)
    except HoldLostError as exc:
        raise ServiceUnavailable(
            "this replica lost its hold on the budget or the idempotency key (it was taken for "
            "dead during a stall), so the submit was not sent (nothing was bought); retry",
            reason="hold_lost",
            headers={"Retry-After": "1"},
        ) from exc
    except StoreError as exc:
        raise ServiceUnavailable(
            "the proxy's ledger is unavailable, so the submit was not sent (nothing was bought); "
            "retry shortly",
            reason="store_unavailable",
            headers={"Retry-After": "1"},
        ) from exc
    outcome = await attempts.send(
        app[UPSTREAM],
        admission.policy if admission is not None and queueable else app[SUBMIT_POLICY],
        "POST",
        path,
        headers,
        ctx.body,
        operation="submit",
        idempotent=False,
        rng=app[RUNTIME].rng,
        on_retry=lambda reason: metrics.upstream_retries.labels("submit", reason).inc(),
    )
    ctx.upstream_attempts = outcome.attempts
    ctx.upstream_seconds = outcome.upstream_seconds
    extra = proxy_headers(ctx)
    if outcome.reply is None:
        assert outcome.failure is not None
        if outcome.bucket is Bucket.UNKNOWN:
            placeholder = await jobs.ledger.unknown(ctx, outcome.failure.detail)
            raise unknown_outcome(
                f"the Modellix API did not answer ({outcome.failure.detail})", placeholder, extra
            )
        await jobs.ledger.refused(ctx, outcome.bucket, None)  # never reached the upstream
        error = transport_error(outcome.failure, paid=True)
        error.headers.update(extra)
        raise error
    reply = outcome.reply
    if admission is not None and queueable and reply.status == 429:
        # the upstream's own concurrency limit: nothing was created, so queue it
        queued = await admission.requeue(ctx, path, headers, origin, extra)
        if queued is not None:
            return queued
    if outcome.bucket is Bucket.SUCCESS:
        task_id, doc = accepted_task_id(reply.body)
        if task_id is None or doc is None:
            placeholder = await jobs.ledger.unknown(ctx, "2xx answer without a usable task id")
            raise unknown_outcome(
                "the Modellix API accepted the submit but its answer was unusable",
                placeholder,
                extra,
            )
        ctx.task_id = task_id
        body = _rewrite_get_result(doc, task_id, origin, reply.body)
        response = web.Response(
            status=reply.status, body=body, headers=reply_headers(reply.headers)
        )
        response.headers.update(extra)
        response.content_type = "application/json"
        await jobs.ledger.accepted(ctx, task_id, response)
        return response
    if outcome.bucket is Bucket.UNKNOWN:
        placeholder = await jobs.ledger.unknown(ctx, f"upstream answered HTTP {reply.status}")
        error = unknown_outcome(
            f"the Modellix API answered the submit with HTTP {reply.status}", placeholder, extra
        )
        error.details = {**(error.details or {}), "upstream_status": reply.status}
        raise error
    response = web.Response(
        status=reply.status, body=reply.body, headers=reply_headers(reply.headers)
    )
    response.headers.update(extra)
    await jobs.ledger.refused(ctx, outcome.bucket, response)
    return response


def unknown_outcome(what: str, placeholder: str, headers: dict[str, str]) -> UpstreamTimeout:
    """The answer for a submit that was sent and may have created a task."""
    return UpstreamTimeout(
        f"{what}; the outcome is unknown and a task may exist. The proxy did not resend it "
        f"and will not: it is recorded as {placeholder}, and a retry with the same "
        "Idempotency-Key gets 409 until an operator reconciles it. Check your tasks before "
        "submitting again with a new key.",
        reason="submit_outcome_unknown",
        details={"unknown_record": placeholder},
        headers=headers,
    )


def _rewrite_get_result(doc: dict[str, Any], task_id: str, origin: str, raw: bytes) -> bytes:
    data = doc["data"]
    get_result = data.get("get_result")
    if not isinstance(get_result, dict) or "url" not in get_result:
        return raw
    get_result["url"] = f"{origin}/api/v1/tasks/{quote(task_id, safe='')}"
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
