"""The admission queue in the admin API.

GET /admin/admission?state=queued|dispatching|dispatched|unknown|failed|expired|cancelled
    &team=&limit=100      queue rows, oldest first (never their body), and the depth per team
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from proxy.errors import BadRequest
from proxy.state import ADMIN_RUNTIME
from proxy.stores.admission_records import QueuedSubmit, QueueState


def row_json(row: QueuedSubmit) -> dict[str, Any]:
    return {
        "queue_id": row.queue_id,
        "team": row.team or None,
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


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/admission", list_queue)
