"""The simulator's HTTP face: api.modellix.ai's routes, plus ``/_sim`` controls.

Every ``/api/v1`` route needs ``Authorization: Bearer <key>`` (except
``apikey/validate``, which answers ``is_valid: false`` instead of 401), answers
``application/json`` and refuses in the upstream envelope
``{"code": <status>, "message": "<Category>: <detail>"}``. With a requests-per-minute
limit in force (``proxy.simulator.limits``) every answer to a team carries
``X-RateLimit-Limit``/``-Remaining``/``-Reset``, and a request over it is 429.

Task payloads: pending/processing/success answer ``code 0`` and ``message
"success"``; a failed task answers ``{"code": 0, "message": "<Category>:
<detail>", "data": {"status": "failed", "task_id": ...}}``, i.e. the reason is in
``message`` as the upstream's error docs say. A success carries ``billing``
(the amount billed), ``duration`` (generation time, ms), ``result_expires_at``
(epoch ms) and resources with ``format``/``width``/``height``
(``Simulator.task_payload``). Submits are checked against the model's published
schema (``proxy.simulator.checks``); ``GET /api/v1/models`` carries display prices.
The schema documents are served by a separate application
(``proxy.simulator.schema_app``), as the real ones live on another origin.

The ``/_sim/...`` routes (see ``proxy.simulator.control``) exist only on the
simulator; they are not part of the upstream API and are neither counted nor logged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.simulator import media, results
from proxy.simulator.control import add_control_routes
from proxy.simulator.core import (
    CONTENT_POLICY_MESSAGE,
    Simulator,
    UpstreamError,
    rate_limit_headers,
)
from proxy.simulator.faults import FAULT_HEADER
from proxy.simulator.http import (
    BODY,
    DROPPED,
    FAULT,
    SIM,
    TEAM,
    error,
    ok,
    redacted_headers,
    reset_connection,
)
from proxy.simulator.limits import WindowState
from proxy.simulator.state import ROUTE_KINDS, RequestRecord, RouteKind

TYPED_PREFIXES = frozenset({"text-to-image", "text-to-video", "image-to-image", "image-to-video"})
MAX_BODY_BYTES = 64 * 1024 * 1024
MALFORMED_BODY = b'{"code":0,"message":"success","data":{"status":"pend'
_STATUS_MESSAGES = {
    500: "Internal error: an unexpected error occurred",
    502: "Bad gateway: the model provider returned an invalid response",
    503: "Service unavailable: the service is temporarily unavailable, please retry later",
}


async def _stall(request: web.Request, sim: Simulator) -> bool:
    """Hold ``stall_seconds``; ``False`` if the server started shutting down meanwhile."""
    closing = sim.closing
    if closing is None:
        await asyncio.sleep(sim.config.stall_seconds)
        return True
    try:
        await asyncio.wait_for(closing.wait(), timeout=sim.config.stall_seconds)
    except TimeoutError:
        return True
    return False


def _route_kind(request: web.Request) -> RouteKind:
    name = request.match_info.route.name or ""
    for kind in ROUTE_KINDS:
        if name.startswith(kind):
            return kind
    return "other"


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        value = json.loads(await request.read())
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


@web.middleware
async def upstream_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and log, authenticate, apply faults, render refusals in the envelope."""
    if request.path.startswith(("/_sim/", "/sim/")):  # controls; the result file host (no key)
        return await handler(request)
    sim = request.app[SIM]
    kind = _route_kind(request)
    headers = redacted_headers(request)
    record = RequestRecord(request.method, request.path_qs, kind, sim.clock(), headers)
    sim.request_log.append(record)
    sim.touch()
    sim.counters.requests[kind] += 1
    if kind == "submit":
        sim.counters.submits_received += 1
    return await _answer(request, handler, sim, kind, record)


async def _answer(
    request: web.Request,
    handler: Handler,
    sim: Simulator,
    kind: RouteKind,
    record: RequestRecord,
) -> web.StreamResponse:
    fault: str | None = None
    early: web.StreamResponse | None = None
    window: WindowState | None = None
    try:
        if kind != "validate":
            request[TEAM] = team = sim.authenticate(request.headers.get("Authorization"))
            kling = kind == "submit" and request.match_info.get("provider", "").lower() == "kling"
            window = sim.take_request(team, kling)
        body = await _json_body(request) if kind == "submit" else None
        request[BODY] = body
        fault = sim.faults.choose(kind, request.headers.get(FAULT_HEADER), body)
        record.fault = fault
        if fault is not None:
            sim.counters.faults_applied[fault] = sim.counters.faults_applied.get(fault, 0) + 1
            request[FAULT] = fault
            early = _early_fault(request, fault, kind, sim)
        response = early if early is not None else await handler(request)
    except UpstreamError as exc:
        response = error(exc.status, exc.message, dict(exc.headers or {}))
    except web.HTTPException as exc:
        response = error(exc.status, f"{exc.reason}: {request.method} {request.path}")
    if window is not None and "X-RateLimit-Reset" not in response.headers:
        response.headers.update(window.headers())
    if fault in ("reset_after_create", "stall", "malformed") and response.status == 200:
        response = await _late_fault(request, fault, sim, response)
    record.status = None if response.status == DROPPED else response.status
    sim.touch()
    return response


def _early_fault(
    request: web.Request, fault: str, kind: RouteKind, sim: Simulator
) -> web.StreamResponse | None:
    """Faults that answer before anything is created; ``None`` for the rest."""
    if fault in ("500", "502", "503"):
        status = int(fault)
        return error(status, _STATUS_MESSAGES[status])
    if fault == "429":
        headers = rate_limit_headers(sim.clock())
        return error(429, "Rate limit exceeded: too many requests, please retry later", headers)
    if fault == "content_policy_submit":
        return error(400, CONTENT_POLICY_MESSAGE)
    if fault == "reset_before_create" or (fault == "reset_after_create" and kind != "submit"):
        return reset_connection(request)
    return None


async def _late_fault(
    request: web.Request, fault: str, sim: Simulator, response: web.StreamResponse
) -> web.StreamResponse:
    if fault == "reset_after_create":
        return reset_connection(request)
    if fault == "stall":
        if not await _stall(request, sim):
            return reset_connection(request)
        return response
    return web.Response(body=MALFORMED_BODY, content_type="application/json")


async def submit(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    info = request.match_info
    kind_prefix = info.get("type")
    provider, model = info["provider"], info["model"]
    offer = sim.listing.find(provider, model)
    if offer is not None and not sim.serves(request[TEAM], offer.spec.slug):
        offer = None  # not this team's model: as if it did not exist
    if offer is None or (kind_prefix is not None and kind_prefix not in TYPED_PREFIXES):
        raise UpstreamError(404, f"Model not found: {provider}/{model}")
    body = request[BODY]
    if not isinstance(body, dict):
        raise UpstreamError(400, "Invalid format: invalid JSON format")
    problem = offer.check(body)
    if problem is not None:
        raise UpstreamError(400, problem)
    task = sim.create_task(request[TEAM], offer.spec, body, request.get(FAULT))
    origin = f"{request.scheme}://{request.host}"
    data = {
        "status": "pending",
        "task_id": task.task_id,
        "model_id": task.model_id,
        "get_result": {"method": "GET", "url": f"{origin}/api/v1/tasks/{task.task_id}"},
    }
    return ok(data)


async def poll(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    team = request[TEAM] if sim.config.api_keys is not None else None
    task = sim.lookup(request.match_info["task_id"], team)
    return web.json_response(sim.task_payload(task))


async def models(request: web.Request) -> web.StreamResponse:
    """Every model served to the key's team, each with its display ``price``;
    ``?featured=true``: featured only."""
    sim = request.app[SIM]
    featured = request.query.get("featured", "").strip().lower() in ("true", "1")
    team = request[TEAM]
    spec = sim.config.teams.get(team)
    listed = spec.listed_prices if spec is not None else None
    items = sim.listing.items(featured, lambda slug: sim.serves(team, slug), listed)
    return web.json_response({"models": items})


async def validate(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    try:
        sim.authenticate(request.headers.get("Authorization"))
    except UpstreamError:
        return ok({"is_valid": False})
    return ok({"is_valid": True})


async def balance(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    return ok({"balance": float(round(sim.balance_usd(request[TEAM]), 4))})


def build_app(sim: Simulator) -> web.Application:
    """The aiohttp application of ``sim``."""
    app = web.Application(middlewares=[upstream_middleware], client_max_size=MAX_BODY_BYTES)
    app[SIM] = sim
    app.cleanup_ctx.append(_closing_ctx)
    app.on_shutdown.append(_on_shutdown)
    add_control_routes(app)
    r = app.router
    r.add_get("/api/v1/models", models, name="models")
    r.add_get("/api/v1/apikey/validate", validate, name="validate")
    r.add_get("/api/v1/team/balance", balance, name="balance")
    media.add_routes(app)
    results.add_routes(app)
    r.add_get("/api/v1/tasks/{task_id:.+}", poll, name="poll")
    r.add_post("/api/v1/{provider}/{model}", submit, name="submit")
    r.add_post("/api/v1/{provider}/{model}/async", submit, name="submit_async")
    r.add_post("/api/v1/{type}/{provider}/{model}/async", submit, name="submit_typed")
    return app


async def _closing_ctx(app: web.Application) -> AsyncIterator[None]:
    app[SIM].closing = asyncio.Event()
    yield
    app[SIM].closing = None


async def _on_shutdown(app: web.Application) -> None:
    """Wake stalled handlers so shutdown does not wait ``stall_seconds``."""
    closing = app[SIM].closing
    if closing is not None:
        closing.set()
