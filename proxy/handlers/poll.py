"""``GET /api/v1/tasks/{task_id}``: forwarded (retried freely: polls are free and
idempotent), and observed so that the job ledger follows the task.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from proxy.context import RequestContext, RouteKind
from proxy.errors import InternalError
from proxy.forwarding import poll_headers
from proxy.governance import access
from proxy.governance.keys import Identity
from proxy.runtime import Runtime
from proxy.state import CONTEXT, METRICS, POLL_POLICY, ROUTE, RUNTIME, SETTINGS, UPSTREAM
from proxy.telemetry.children import child
from proxy.upstream import attempts
from proxy.upstream.attempts import Outcome
from proxy.upstream.client import reply_headers
from proxy.upstream.failures import transport_error

# The operation name of polls, in metrics and spans (an enum's value is a property look-up).
_POLL = RouteKind.POLL.value


# The answer is re-framed by aiohttp (and was decoded): its length and coding do not pass.
def handle_poll(request: web.Request) -> Coroutine[Any, Any, web.StreamResponse]:
    """Not a coroutine of its own: a poll without a proxy key (nearly every one) waits for
    nothing before its forward, so the forward's coroutine is the one to await."""
    ctx = request[CONTEXT]
    app = request.app
    runtime = app[RUNTIME]
    route = request[ROUTE]
    task_id = route.task_id or ""
    ctx.task_id = task_id
    authorization = request.headers.get("Authorization")
    if access.passes_through(runtime.keyring, authorization):
        return _forward(request, ctx, app, runtime, task_id, route.target, None, authorization)
    return _identified(request, ctx, app, runtime, task_id, route.target, authorization)


async def _identified(
    request: web.Request,
    ctx: RequestContext,
    app: web.Application,
    runtime: Runtime,
    task_id: str,
    target: str,
    authorization: str | None,
) -> web.Response:
    """The poll of a request that may carry a proxy key: its identity first."""
    identity = await access.identify(runtime.keyring, authorization)
    if identity is not None:  # a proxy key sees only its own tasks
        await access.own_task(runtime.store, identity, task_id)
    return await _forward(request, ctx, app, runtime, task_id, target, identity, authorization)


async def forward_poll(
    request: web.Request,
    task_id: str,
    target: str,
    identity: Identity | None,
    authorization: str | None,
) -> web.Response:
    """The upstream's answer for ``task_id`` (at ``target``), observed for the ledger; the
    caller has checked that the asker may see it."""
    app = request.app
    return await _forward(
        request, request[CONTEXT], app, app[RUNTIME], task_id, target, identity, authorization
    )


async def _forward(
    request: web.Request,
    ctx: RequestContext,
    app: web.Application,
    runtime: Runtime,
    task_id: str,
    target: str,
    identity: Identity | None,
    authorization: str | None,
) -> web.Response:
    # Who asks (vk:<id> or fp:<fingerprint>), never the credential itself.
    caller = access.caller_id(identity, authorization)
    jobs = runtime.tracker
    if jobs is not None:
        cached = jobs.cached_terminal(task_id, caller)
        if cached is not None:
            return web.Response(status=200, body=cached, content_type="application/json")
    settings = app[SETTINGS]
    metrics = app[METRICS]
    # Proxy keys already stripped; the upstream key in place of a proxy key's Authorization.
    headers = poll_headers(request, settings, identity)

    # The send itself is the work to share (no coroutine of ours around it).
    upstream, policy, rng = app[UPSTREAM], app[POLL_POLICY], runtime.rng

    def fetch() -> Coroutine[Any, Any, Outcome]:
        return attempts.send(
            upstream,
            policy,
            "GET",
            target,  # the normalized path the task id was read from
            headers,
            None,
            operation=_POLL,
            idempotent=True,
            rng=rng,
            on_retry=lambda reason: metrics.upstream_retries.labels("poll", reason).inc(),
        )

    if settings.poll.coalesce:
        # Identical polls in flight (same task, same caller) share one upstream request.
        outcome, shared = await runtime.polls.run((task_id, caller or ""), fetch)
    else:
        outcome, shared = await fetch(), False
    if not shared:  # this poll's own upstream request (one for all that shared it)
        child(metrics.job_polls, "client").inc()
        ctx.upstream_attempts = outcome.attempts
        ctx.upstream_seconds = outcome.upstream_seconds
    reply = outcome.reply
    if reply is None:
        if outcome.failure is None:
            raise InternalError("poll ended without an answer or a failure")
        raise transport_error(outcome.failure, paid=False)
    if jobs is not None and not shared and jobs.follows(task_id, reply.status):
        await jobs.observe_reply(
            task_id,
            reply.status,
            reply.body,
            source="client",
            caller=caller,
            # the client's own Modellix key (pass-through only): may give back a key lost
            # in a restart, for a job this very key submitted; never a proxy key
            credential=authorization if identity is None else None,
            document=outcome.document,
        )
    return web.Response(status=reply.status, body=reply.body, headers=reply_headers(reply.headers))
