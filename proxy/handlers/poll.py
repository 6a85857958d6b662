"""``GET /api/v1/tasks/{task_id}``: forwarded (retried freely: polls are free and
idempotent), and observed so that the job ledger follows the task.
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from proxy.context import RouteKind
from proxy.errors import InternalError
from proxy.forwarding import upstream_headers
from proxy.governance import access
from proxy.handlers.failures import transport_error
from proxy.state import CONTEXT, METRICS, POLL_POLICY, ROUTE, RUNTIME, SETTINGS, UPSTREAM
from proxy.upstream import attempts
from proxy.upstream.client import end_to_end

_DROP_RESPONSE = frozenset({"content-length", "content-encoding"})


def reply_headers(headers: CIMultiDict[str] | object) -> CIMultiDict[str]:
    out = end_to_end(headers)  # type: ignore[arg-type]
    for name in list(out.keys()):
        if name.lower() in _DROP_RESPONSE:
            out.popall(name, None)
    return out


async def handle_poll(request: web.Request) -> web.StreamResponse:
    ctx = request[CONTEXT]
    app = request.app
    route = request[ROUTE]
    task_id = route.task_id or ""
    ctx.task_id = task_id
    authorization = request.headers.get("Authorization")
    identity = await access.identify(app[RUNTIME].keyring, authorization)
    await access.own_task(app[RUNTIME].store, identity, task_id)
    # Who asks (vk:<id> or fp:<fingerprint>), never the credential itself.
    caller = access.caller_id(identity, authorization)
    jobs = app[RUNTIME].tracker
    if jobs is not None:
        cached = await jobs.cached_terminal(task_id, caller)
        if cached is not None:
            return web.Response(status=200, body=cached, content_type="application/json")
    metrics = app[METRICS]
    runtime = app[RUNTIME]
    headers = upstream_headers(request, app[SETTINGS], keep_length=False)
    access.swap(headers, identity)

    async def fetch() -> attempts.Outcome:
        outcome = await attempts.send(
            app[UPSTREAM],
            app[POLL_POLICY],
            "GET",
            route.target,  # the normalized path the task id was read from
            headers,
            None,
            operation=RouteKind.POLL.value,
            idempotent=True,
            rng=runtime.rng,
            on_retry=lambda reason: metrics.upstream_retries.labels("poll", reason).inc(),
        )
        metrics.job_polls.labels("client").inc()
        return outcome

    if app[SETTINGS].poll.coalesce:
        # Identical polls in flight (same task, same caller) share one upstream request.
        key = (task_id, caller or "")
        outcome, shared = await runtime.polls.run(key, fetch)
    else:
        outcome, shared = await fetch(), False
    if not shared:
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
        )
    return web.Response(status=reply.status, body=reply.body, headers=reply_headers(reply.headers))
