"""The public schema origin: ``GET /models/{provider}/{model_id}/api_schema``, no key.

On the real service this lives on www.modellix.ai, not on api.modellix.ai, so the
simulator serves it from an application (and listener) of its own. The document, an
OpenAPI-style operation for the model's submit::

    {"servers": [{"url": "https://api.modellix.ai/api/v1/{provider}/{model_id}"}],
     "post": {"description": ..., "operationId": ..., "summary": ...,
              "requestBody": {"required": true, "content": {"application/json": {
                  "schema": {JSON Schema object}, "examples": {"minimal": {...}}}}},
              "responses": {"200": ..., "400": ..., ...}}}

It is built from what the simulator publishes *now* (``Simulator.listing``), so a live
schema change shows here at once. An unknown model answers 404
``{"code": 404, "message": "Model not found: provider/model"}``; every answer is JSON.
Requests are logged (route ``schema``) and counted like the API's.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.simulator.core import Simulator
from proxy.simulator.http import SIM, error, redacted_headers
from proxy.simulator.listing import Offer
from proxy.simulator.state import RequestRecord

SERVER_ORIGIN = "https://api.modellix.ai"
_WORDS = re.compile(r"[A-Za-z0-9]+")
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "integer", "description": "The HTTP status."},
        "message": {"type": "string", "description": "'<Category>: <detail>'"},
    },
    "required": ["code", "message"],
}
_ACCEPTED_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "integer", "enum": [0]},
        "message": {"type": "string", "enum": ["success"]},
        "data": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["pending"]},
                "task_id": {"type": "string"},
                "model_id": {"type": "string"},
                "get_result": {
                    "type": "object",
                    "properties": {"method": {"type": "string"}, "url": {"type": "string"}},
                },
            },
            "required": ["status", "task_id"],
        },
    },
    "required": ["code", "message", "data"],
}
_REFUSALS = {
    "400": ("Invalid parameters", "Invalid parameters: parameter 'prompt' is required"),
    "401": ("Authentication failed", "Authentication failed: invalid or expired API key"),
    "402": ("Insufficient balance", "Insufficient balance: available $0.0000 is below the cost"),
    "429": ("Rate or concurrency limit exceeded", "Rate limit exceeded: too many requests"),
    "500": ("Internal error", "Internal error: an unexpected error occurred"),
}


def operation_id(model_id: str) -> str:
    """``seedance-2.0-fast-i2v`` -> ``seedance20FastI2v``."""
    words = _WORDS.findall(model_id)
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:]) if words else ""


def _json_content(schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema, "example": example}}


def responses(offer: Offer) -> dict[str, Any]:
    """The operation's documented answers: the accepted task and the refusals."""
    accepted = {
        "code": 0,
        "message": "success",
        "data": {
            "status": "pending",
            "task_id": "task-abc123",
            "model_id": offer.spec.model_id,
            "get_result": {"method": "GET", "url": f"{SERVER_ORIGIN}/api/v1/tasks/task-abc123"},
        },
    }
    out: dict[str, Any] = {
        "200": {
            "description": "Task accepted; poll get_result.url for its status.",
            "content": _json_content(_ACCEPTED_SCHEMA, accepted),
        }
    }
    for status, (text, example) in _REFUSALS.items():
        out[status] = {
            "description": text,
            "content": _json_content(_ERROR_SCHEMA, {"code": int(status), "message": example}),
        }
    return out


def api_schema_document(offer: Offer, server_origin: str = SERVER_ORIGIN) -> dict[str, Any]:
    """The published ``api_schema`` document of one model, as it stands now."""
    spec = offer.spec
    provider, model_id = spec.slug.split("/", 1)
    schema = {"description": f"{spec.description} request.", **offer.schema}
    return {
        "servers": [{"url": f"{server_origin}/api/v1/{provider}/{model_id}"}],
        "post": {
            "summary": spec.description,
            "description": f"{spec.description} ({spec.type}).",
            "operationId": operation_id(model_id),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": schema, "examples": dict(offer.examples)}
                },
            },
            "responses": responses(offer),
        },
    }


async def api_schema(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    provider, model = request.match_info["provider"], request.match_info["model"]
    offer = sim.listing.find(provider, model)
    if offer is None:
        return error(404, f"Model not found: {provider}/{model}")
    return web.json_response(api_schema_document(offer))


@web.middleware
async def _schema_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log and count, and answer every refusal (404, 405) as JSON."""
    sim = request.app[SIM]
    headers = redacted_headers(request)
    record = RequestRecord(request.method, request.path_qs, "schema", sim.clock(), headers)
    sim.request_log.append(record)
    sim.counters.requests["schema"] += 1
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = error(exc.status, f"{exc.reason}: {request.method} {request.path}")
    record.status = response.status
    sim.touch()
    return response


def build_schema_app(sim: Simulator) -> web.Application:
    """The schema origin's application."""
    app = web.Application(middlewares=[_schema_middleware])
    app[SIM] = sim
    app.router.add_get("/models/{provider}/{model}/api_schema", api_schema)
    return app
