"""``GET /api/v1/tasks/{task_id}``: forwarded (retried freely: polls are free and
idempotent), and observed so that the job ledger follows the task.
"""

from __future__ import annotations

from functools import partial

from aiohttp import web

from proxy.context import RouteKind
from proxy.errors import InternalError
from proxy.forwarding import upstream_headers
from proxy.governance import access
from proxy.governance.keys import Identity
from proxy.state import CONTEXT, METRICS, POLL_POLICY, ROUTE, RUNTIME, SETTINGS, UPSTREAM
from proxy.telemetry.children import child
from proxy.upstream import attempts
from proxy.upstream.client import reply_headers
from proxy.upstream.failures import transport_error


# The answer is re-framed by aiohttp (and was decoded): its length and coding do not pass.
async def handle_poll(request: web.Request) -> web.StreamResponse:
    ctx = request[CONTEXT]
    app = request.app
    route = request[ROUTE]
    task_id = route.task_id or ""
    ctx.task_id = task_id
    authorization = request.headers.get("Authorization")
    identity = await access.identify(app[RUNTIME].keyring, authorization)
    if identity is not None:  # a proxy key sees only its own tasks
        await access.own_task(app[RUNTIME].store, identity, task_id)
    return await forward_poll(request, task_id, route.target, identity, authorization)


async def forward_poll(
    request: web.Request,
    task_id: str,
    target: str,
    identity: Identity | None,
    authorization: str | None,
) -> web.Response:
    """The upstream's answer for ``task_id`` (at ``target``), observed for the ledger; the
    caller has checked that the asker may see it."""
    ctx = request[CONTEXT]
    app = request.app
    # Who asks (vk:<id> or fp:<fingerprint>), never the credential itself.
    caller = access.caller_id(identity, authorization)
    jobs = app[RUNTIME].tracker
    if jobs is not None:
        cached = jobs.cached_terminal(task_id, caller)
        if cached is not None:
            return web.Response(status=200, body=cached, content_type="application/json")
    metrics = app[METRICS]
    runtime = app[RUNTIME]
    # Built once per poll, proxy keys already stripped (upstream_headers does it); the
    # upstream key replaces a proxy key's Authorization.
    headers = upstream_headers(request, app[SETTINGS], keep_length=False)
    if identity is not None:
        headers["Authorization"] = identity.upstream_authorization

    # The send itself is the work to share (no coroutine of ours around it).
    fetch = partial(
        attempts.send,
        app[UPSTREAM],
        app[POLL_POLICY],
        "GET",
        target,  # the normalized path the task id was read from
        headers,
        None,
        operation=RouteKind.POLL.value,
        idempotent=True,
        rng=runtime.rng,
        on_retry=lambda reason: metrics.upstream_retries.labels("poll", reason).inc(),
    )
    if app[SETTINGS].poll.coalesce:
        # Identical polls in flight (same task, same caller) share one upstream request.
        key = (task_id, caller or "")
        outcome, shared = await runtime.polls.run(key, fetch)
    else:
        outcome, shared = await fetch(), False
    if not shared:  # this poll's own upstream request (one for all that shared it)
        child(metrics.job_polls, "client").inc()
        ctx.upstream_attempts = outcome.attempts
        ctx.upstream_seconds = outcome.upstream_seconds
    if outcome.reply is None:
        if outcome.failure is None:
            raise InternalError("poll ended without an answer or a failure")
        raise transport_error(outcome.failure, paid=False)
    reply = outcome.reply
    if jobs is not None and not shared:
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
