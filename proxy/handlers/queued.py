"""``GET`` and ``DELETE /api/v1/tasks/q-…``: a submit the admission queue holds.

Answered by the proxy, never forwarded while queued (the upstream has never heard
of a ``q-`` id). Only the key that submitted it may see or cancel it (404 otherwise,
as for a task it does not own). Once dispatched, a poll is the upstream task's own
poll (observed for the ledger) answering for the ``q-`` id; ``DELETE`` is then 409.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from proxy.admission import answers
from proxy.errors import Conflict, NotFound, ServiceUnavailable
from proxy.governance import access
from proxy.handlers.poll import forward_poll
from proxy.state import CONTEXT, METRICS, ROUTE, RUNTIME
from proxy.stores.admission_records import Cancel, QueuedSubmit, QueueState
from proxy.stores.records import JobStatus

_UPSTREAM_ID = "X-Modellix-Proxy-Upstream-Task-Id"


async def _owned(request: web.Request) -> tuple[QueuedSubmit, str | None]:
    """The row, if the asker submitted it; and the asker's ``Authorization``."""
    runtime = request.app[RUNTIME]
    queue_id = request[ROUTE].task_id or ""
    request[CONTEXT].task_id = queue_id
    authorization = request.headers.get("Authorization")
    identity = await access.identify(runtime.keyring, authorization)
    store = runtime.store
    if store is None:
        raise ServiceUnavailable("the store is not open yet", reason="store_unavailable")
    row = await store.admission_get(queue_id)
    if row is None or identity is None or row.caller != identity.caller.identity:
        raise NotFound(f"task {queue_id!r} is not one of this key's jobs", reason="task_not_owned")
    return row, authorization


async def handle_queued(request: web.Request) -> web.StreamResponse:
    if request.method == "DELETE":
        return await _cancel(request)
    row, authorization = await _owned(request)
    runtime = request.app[RUNTIME]
    if row.state in (QueueState.QUEUED, QueueState.DISPATCHING):
        return _json(answers.waiting_doc(row), {"X-Modellix-Proxy-Queued": "true"})
    if row.state is QueueState.DISPATCHED and row.task_id is not None:
        identity = await access.identify(runtime.keyring, authorization)
        target = f"/api/v1/tasks/{quote(row.task_id, safe='')}"
        reply = await forward_poll(request, row.task_id, target, identity, authorization)
        body = reply.body if isinstance(reply.body, bytes) else b""
        out = web.Response(
            status=reply.status,
            body=answers.relabel(body, row.task_id, row.queue_id),
            headers=reply.headers,
        )
        out.headers[_UPSTREAM_ID] = row.task_id
        return out
    if row.state is QueueState.UNKNOWN:
        store = runtime.store
        job = await store.get_job(row.task_id) if store and row.task_id else None
        if job is not None and job.status is not JobStatus.UNKNOWN:  # reconciled since
            return _json(answers.failed_doc(row), {})
        raise Conflict(
            "the proxy sent this queued submit but got no usable answer, so a task may exist "
            f"upstream; it is recorded as {row.task_id} and will not be resent. An operator "
            "reconciles it (GET /admin/jobs?status=unknown)",
            reason="submit_outcome_unknown",
            details={"unknown_record": row.task_id},
        )
    return _json(answers.failed_doc(row), {})


async def _cancel(request: web.Request) -> web.StreamResponse:
    row, _ = await _owned(request)
    runtime = request.app[RUNTIME]
    store = runtime.store
    assert store is not None
    clock = runtime.admission.clock if runtime.admission is not None else None
    now = clock() if clock is not None else row.enqueued_at
    outcome = await store.admission_cancel(
        row.queue_id,
        "Cancelled: the submit was cancelled while queued (DELETE); nothing was bought and "
        "its budget reservation was released",
        now,
    )
    if outcome is Cancel.NOT_FOUND:
        raise NotFound(
            f"task {row.queue_id!r} is not one of this key's jobs", reason="task_not_owned"
        )
    if outcome is Cancel.TOO_LATE:
        latest = await store.admission_get(row.queue_id)
        state = latest.state if latest is not None else row.state
        task_id = latest.task_id if latest is not None else row.task_id
        raise Conflict(
            f"task {row.queue_id!r} has already left the queue ({state.value}"
            + (f", upstream task {task_id}" if task_id else "")
            + "); only a queued submit can be cancelled",
            reason="already_dispatched",
            details={"state": state.value, **({"upstream_task_id": task_id} if task_id else {})},
        )
    metrics = request.app[METRICS]
    metrics.admission_dispatches.labels("cancelled").inc()
    metrics.admission_wait.labels("cancelled").observe(max(0.0, now - row.enqueued_at))
    return _json(
        answers.cancelled_answer(row),
        {},
    )


def _json(body: bytes, headers: dict[str, str]) -> web.Response:
    response = web.Response(status=200, body=body, content_type="application/json")
    response.headers.update(headers)
    return response
