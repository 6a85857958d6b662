"""The published schemas in the admin API.

GET  /admin/schemas                          every model's pin; the origin's state
GET  /admin/schemas/{provider}/{model}       one pin, its versions, the pinned and the latest
                                             document, where the catalog spec disagrees
POST /admin/schemas/{provider}/{model}/accept   pin the latest version (or ``{"hash": ...}``)

A model whose ``change_waiting`` is true serves (and validates with) its pinned version
while the origin publishes another (policy ``hold``): accepting pins the new one, on every
replica within ``models.upstream_schemas.sync_seconds``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from proxy.admin_access import audit
from proxy.errors import BadRequest, NotFound
from proxy.state import ADMIN_RUNTIME
from proxy.stores.base import SchemaStore
from proxy.stores.schema_records import SchemaPin


def pin_json(pin: SchemaPin) -> dict[str, Any]:
    return {
        "model": pin.slug,
        "pinned_hash": pin.pinned_hash,
        "latest_hash": pin.latest_hash,
        "change_waiting": pin.waiting,
        "pinned_at": pin.pinned_at,
        "latest_at": pin.latest_at,
        "checked_at": pin.checked_at,
        "changes": pin.changes,
    }


def _slug(request: web.Request) -> str:
    return f"{request.match_info['provider']}/{request.match_info['model']}"


async def _document(store: SchemaStore, slug: str, hash_: str) -> Any:
    text = await store.schema_document(slug, hash_)
    return None if text is None else json.loads(text)


async def list_schemas(request: web.Request) -> web.Response:
    runtime = request.app[ADMIN_RUNTIME]
    pins = await runtime.open_store().schema_pins()
    registry = runtime.schemas
    found = registry.disagreements if registry is not None else {}
    models = [{**pin_json(p), "catalog_disagreements": len(found.get(p.slug, []))} for p in pins]
    health = registry.health() if registry is not None else {"enabled": False}
    return web.json_response({**health, "models": models})


async def show_schema(request: web.Request) -> web.Response:
    runtime = request.app[ADMIN_RUNTIME]
    store, slug = runtime.open_store(), _slug(request)
    pin = await store.schema_pin(slug)
    if pin is None:
        raise NotFound(f"no schema recorded for {slug}")
    versions = await store.schema_versions(slug)
    registry = runtime.schemas
    out = pin_json(pin)
    out["versions"] = [{"hash": v.hash, "first_seen": v.first_seen} for v in versions]
    out["pinned"] = await _document(store, slug, pin.pinned_hash)
    if pin.waiting:
        out["latest"] = await _document(store, slug, pin.latest_hash)
    out["catalog_disagreements"] = registry.disagreements.get(slug, []) if registry else []
    return web.json_response(out)


async def accept_schema(request: web.Request) -> web.Response:
    runtime = request.app[ADMIN_RUNTIME]
    slug = _slug(request)
    hash_: str | None = None
    if request.body_exists:  # not can_read_body: the door (admin_input) has read it
        try:
            body = await request.json()
        except ValueError as exc:
            raise BadRequest('the body must be JSON: {} or {"hash": ...}') from exc
        if not isinstance(body, dict) or not isinstance(body.get("hash", ""), str):
            raise BadRequest('the body must be {} or {"hash": "<version hash>"}')
        hash_ = body.get("hash") or None
    registry = runtime.schemas
    store = runtime.open_store()
    async with audit(request, "schema.accept", slug) as entry:
        before = await store.schema_pin(slug)
        pin = await store.accept_schema(slug, hash_, time.time())
        if pin is None:
            what = f"version {hash_}" if hash_ else "schema"
            raise NotFound(f"no {what} recorded for {slug}")
        entry.before = pin_json(before) if before is not None else None
        entry.after = pin_json(pin)
    # Committed with its audit row: only now does this replica validate with the new pin (the
    # others take it at their next sync). Had the transaction failed, nothing here changed.
    if registry is not None and registry.attached:
        await registry.accepted(pin, before)
    return web.json_response(pin_json(pin))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/schemas", list_schemas)
    app.router.add_get("/admin/schemas/{provider}/{model}", show_schema)
    app.router.add_post("/admin/schemas/{provider}/{model}/accept", accept_schema)
