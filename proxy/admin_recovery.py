"""The admin API for what a crash or an unknown outcome leaves behind.

GET  /admin/intents                            submits being sent right now (or whose
                                               replica died: the sweep turns those into
                                               ``unknown`` records within a lease)
GET  /admin/reservations?limit=                budget reservations and slots still held,
                                               by a replica (request in progress) or a job
POST /admin/reservations/{id}/release          release one (an operator's decision)
POST /admin/jobs/{task_id}/reconcile           an ``unknown`` record: with
                                               ``{"task_id": "..."}`` it becomes that task's
                                               job (polled, settled as usual); without, it
                                               is closed as failed and its money released
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from proxy.admin_access import audit
from proxy.admin_views import job_json
from proxy.errors import BadRequest, Conflict, NotFound
from proxy.money import optional_sample
from proxy.state import ADMIN_RUNTIME
from proxy.stores.base import DuplicateJobError, Store
from proxy.stores.records import HeldReservation, Intent, JobRecord, JobStatus

MAX_TASK_ID = 512


def _store(request: web.Request) -> Store:
    return request.app[ADMIN_RUNTIME].open_store()


def intent_json(intent: Intent) -> dict[str, Any]:
    job = intent.job
    return {
        "intent_id": intent.intent_id,
        "owner": intent.owner,
        "created_at": intent.created_at,
        "caller": job.caller,
        "team": job.team,
        "project": job.project,
        "model": job.pinned_slug,
        "input_hash": job.input_hash,
        "correlation_id": job.correlation_id,
        "idempotency_key": intent.idempotency_key,
        "estimated_cost_usd": optional_sample(job.estimated_cost_micros),
        "reservation_id": intent.reservation_id,
        "slot_reservation_id": intent.slot_reservation_id,
    }


def reservation_json(held: HeldReservation) -> dict[str, Any]:
    return {
        "reservation_id": held.reservation_id,
        "amount_micros": held.amount_micros,
        "scopes": [{"scope_key": k, "window_start": w} for k, w in held.scopes],
        "held_by": {"replica": held.owner} if held.owner else {"job": held.task_id},
        "created_at": held.created_at,
    }


def _limit(request: web.Request) -> int:
    try:
        return max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError:
        raise BadRequest("limit must be a whole number") from None


async def list_intents(request: web.Request) -> web.Response:
    intents = await _store(request).list_intents(_limit(request))
    return web.json_response({"intents": [intent_json(i) for i in intents]})


async def list_reservations(request: web.Request) -> web.Response:
    held = await _store(request).open_reservations(_limit(request))
    return web.json_response({"reservations": [reservation_json(h) for h in held]})


async def release_reservation(request: web.Request) -> web.Response:
    reservation_id = request.match_info["reservation_id"]
    async with audit(request, "reservation.release", reservation_id) as entry:
        if not await _store(request).release_reservations([reservation_id]):
            raise NotFound(f"no reservation {reservation_id!r} is held")
        entry.before, entry.after = {"state": "held"}, {"state": "released"}
    return web.json_response({"released": reservation_id})


async def reconcile_job(request: web.Request) -> web.Response:
    """Resolve an ``unknown`` record: attach the task it created, or close it as failed."""
    runtime = request.app[ADMIN_RUNTIME]
    store = _store(request)
    placeholder = request.match_info["task_id"]
    task_id = await _attach_to(request)
    async with audit(request, "job.reconcile", placeholder) as entry:
        job = await store.get_job(placeholder)
        if job is None:
            raise NotFound(f"no job with task id {placeholder!r}")
        if job.status is not JobStatus.UNKNOWN:
            raise Conflict(
                f"job {placeholder!r} is {job.status.value}, not unknown: nothing to reconcile"
            )
        entry.before = job_json(job)
        if task_id is not None:
            try:
                attached = await store.attach_task(placeholder, task_id, time.time())
            except DuplicateJobError:
                raise Conflict(f"task {task_id!r} is already in the ledger") from None
            if attached is None:
                raise Conflict(f"job {placeholder!r} was reconciled meanwhile")
            entry.after = job_json(attached)
            return web.json_response(entry.after)
        transition = await store.observe(
            placeholder,
            JobStatus.FAILED.value,
            time.time(),
            source="watcher",
            error_reason="reconciled by an operator: no task was created upstream",
            final_cost_micros=0,
        )
        entry.after = job_json(transition.job)
    closed: JobRecord = transition.job
    if transition.became_terminal and runtime.tracker is not None:
        await runtime.tracker.settle(closed)
    return web.json_response(job_json(closed))


async def _attach_to(request: web.Request) -> str | None:
    if not request.body_exists:  # not can_read_body: the door (admin_input) has read it
        return None
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest('the body must be JSON: {} or {"task_id": "..."}') from None
    if body in (None, {}):
        return None
    task_id = body.get("task_id") if isinstance(body, dict) else None
    if not isinstance(task_id, str) or not 0 < len(task_id) <= MAX_TASK_ID:
        raise BadRequest("task_id must be the upstream task id (a non-empty string)")
    if task_id.startswith("unknown:"):
        raise BadRequest("task_id must be the upstream's task id, not a placeholder")
    return task_id


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/intents", list_intents)
    app.router.add_get("/admin/reservations", list_reservations)
    app.router.add_post("/admin/reservations/{reservation_id}/release", release_reservation)
    app.router.add_post("/admin/jobs/{task_id:.+}/reconcile", reconcile_job)
