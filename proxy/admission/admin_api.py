"""The admission queue in the admin API.

GET  /admin/admission?state=queued|dispatching|dispatched|unknown|failed|expired|cancelled
     &team=&limit=100     queue rows, oldest first (never their body), and the depth per team
POST /admin/admission/{queue_id}/cancel   cancel a queued submit (nothing was bought; its
                                          reservation is released); 409 once dispatched
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from proxy.admin_access import audit
from proxy.errors import BadRequest, Conflict, NotFound
from proxy.state import ADMIN_RUNTIME
from proxy.stores.admission_records import Cancel, QueuedSubmit, QueueState


def row_json(row: QueuedSubmit) -> dict[str, Any]:
    return {
        "queue_id": row.queue_id,
        "team": row.team or None,
        "account": row.job.account,
        "caller": row.caller,
        "state": row.state.value,
        "model": row.job.pinned_slug,
        "enqueued_at": row.enqueued_at,
        "not_before": row.not_before,
        "attempts": row.attempts,
        "dispatched_at": row.dispatched_at,
        "finished_at": row.finished_at,
        "task_id": row.task_id,
        "idempotency_key": row.idempotency_key,
        "reservation_id": row.reservation_id,
        "estimated_cost_micros": row.job.estimated_cost_micros,
        "error": row.error,
    }


async def list_queue(request: web.Request) -> web.Response:
    store = request.app[ADMIN_RUNTIME].open_store()
    query = request.query
    states: tuple[QueueState, ...] = ()
    if query.get("state"):
        try:
            states = tuple(QueueState(s) for s in query["state"].split(","))
        except ValueError as exc:
            raise BadRequest(f"unknown state: {exc}", reason="bad_query") from exc
    try:
        limit = max(1, min(1000, int(query.get("limit", "100"))))
    except ValueError as exc:
        raise BadRequest("limit must be an integer", reason="bad_query") from exc
    rows = await store.admission_rows(team=query.get("team"), states=states, limit=limit)
    depth = {s.team: s.depth for s in await store.admission_stats()}  # "": no team
    return web.json_response({"rows": [row_json(r) for r in rows], "queued_by_team": depth})


async def cancel_queued(request: web.Request) -> web.Response:
    """An operator cancels a queued submit (the client sees it cancelled when it polls)."""
    store = request.app[ADMIN_RUNTIME].open_store()
    queue_id = request.match_info["queue_id"]
    async with audit(request, "admission.cancel", queue_id) as entry:
        before = await store.admission_get(queue_id)
        if before is None:
            raise NotFound(f"no queued submit {queue_id!r}")
        outcome = await store.admission_cancel(
            queue_id,
            "Cancelled: an operator cancelled the submit while it was queued; nothing was "
            "bought and its budget reservation was released",
            time.time(),
        )
        if outcome is not Cancel.CANCELLED:
            raise Conflict(
                f"{queue_id!r} has already left the queue ({before.state.value}); only a"
                " queued submit can be cancelled",
                reason="already_dispatched",
            )
        after = await store.admission_get(queue_id)
        entry.before, entry.after = row_json(before), row_json(after) if after else None
    return web.json_response(entry.after)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/admission", list_queue)
    app.router.add_post("/admin/admission/{queue_id}/cancel", cancel_queued)
