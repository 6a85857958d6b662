"""The governance part of the admin API: keys, budgets, the spend report.

POST   /admin/keys                  create a virtual key (the key is in this answer only)
GET    /admin/keys?team=&include_revoked=true
DELETE /admin/keys/{key_id}         revoke (every replica refuses it within keys.cache_seconds)
PUT    /admin/budgets/{name}        create or change a budget
GET    /admin/budgets               budgets with their current window: spent, reserved, left
DELETE /admin/budgets/{name}
GET    /admin/report?since=&until=&group_by=day,team,project,model&format=csv|json|focus
GET    /admin/export/focus?since=&until=&format=csv|json|ndjson   FOCUS 1.1, one row per job

Reports and exports are aggregated by the store or read in pages, and streamed.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from proxy.admin_access import audit
from proxy.admin_input import json_body
from proxy.config import BudgetSpec
from proxy.errors import BadRequest, NotFound, ServiceUnavailable
from proxy.governance import focus, report, streaming
from proxy.governance.budgets import iso
from proxy.governance.keys import new_key
from proxy.governance.setup import budget_from_spec
from proxy.money import sample
from proxy.runtime import Runtime
from proxy.state import ADMIN_RUNTIME
from proxy.stores.base import LedgerReadStore, Store
from proxy.stores.records import VirtualKey
from proxy.webhooks.admin_api import add_routes as add_webhook_routes


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=128)
    team: str | None = Field(None, max_length=128)
    project: str | None = Field(None, max_length=128)
    allowed_models: list[str] = Field(default_factory=list, max_length=100)
    expires_at: float | None = None
    max_concurrent_jobs: int | None = Field(None, ge=1, le=10_000)


def _runtime(request: web.Request) -> tuple[Runtime, Store]:
    runtime = request.app[ADMIN_RUNTIME]
    return runtime, runtime.open_store()


def _invalid(exc: ValidationError) -> BadRequest:
    problems = [
        {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
    ]
    return BadRequest("invalid fields", details={"errors": problems})


def key_json(key: VirtualKey) -> dict[str, Any]:
    doc = dataclasses.asdict(key)
    doc.pop("key_hash", None)
    doc["allowed_models"] = list(key.allowed_models)
    doc["active"] = key.revoked_at is None
    return doc


async def create_key(request: web.Request) -> web.Response:
    runtime, store = _runtime(request)
    try:
        spec = NewKey.model_validate(await json_body(request))
    except ValidationError as exc:
        raise _invalid(exc) from None
    unknown = [m for m in spec.allowed_models if m not in runtime.catalog]
    if unknown:
        raise BadRequest(f"allowed_models must be pinned catalog slugs; unknown: {unknown}")
    record, token = new_key(
        time.time(),
        name=spec.name,
        team=spec.team,
        project=spec.project,
        allowed_models=tuple(spec.allowed_models),
        expires_at=spec.expires_at,
        max_concurrent_jobs=spec.max_concurrent_jobs,
    )
    async with audit(request, "key.create", record.key_id) as entry:
        stored = await store.create_virtual_key(record)
        entry.after = key_json(stored)
    return web.json_response({"key": token, **key_json(stored)}, status=201)


async def list_keys(request: web.Request) -> web.Response:
    _, store = _runtime(request)
    keys = await store.list_virtual_keys(
        team=request.query.get("team") or None,
        include_revoked=request.query.get("include_revoked", "") in {"1", "true", "yes"},
    )
    return web.json_response({"keys": [key_json(k) for k in keys]})


async def revoke_key(request: web.Request) -> web.Response:
    _, store = _runtime(request)
    key_id = request.match_info["key_id"]
    async with audit(request, "key.revoke", key_id) as entry:
        before = await store.get_virtual_key(key_id)
        if before is None or not await store.revoke_virtual_key(key_id, time.time()):
            raise NotFound(f"no active key {key_id!r}")
        after = await store.get_virtual_key(key_id)
        entry.before, entry.after = key_json(before), key_json(after) if after else None
    return web.json_response({"key_id": key_id, "revoked": True})


async def put_budget(request: web.Request) -> web.Response:
    runtime, store = _runtime(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    try:
        spec = BudgetSpec.model_validate({**body, "name": request.match_info["name"]})
    except ValidationError as exc:
        raise _invalid(exc) from None
    async with audit(request, "budget.put", spec.name) as entry:
        entry.before = await budget_doc(store, spec.name)
        stored = await store.put_budget(budget_from_spec(spec, time.time()))
        entry.after = doc = _budget_json(dataclasses.asdict(stored))
    if runtime.budgets is not None:
        runtime.budgets.invalidate()
    return web.json_response(doc)


async def list_budgets(request: web.Request) -> web.Response:
    runtime, _ = _runtime(request)
    if runtime.budgets is None:
        raise ServiceUnavailable("budgets are not loaded yet")
    runtime.budgets.invalidate()
    out = []
    for applied, window in await runtime.budgets.standing(time.time()):
        doc = _budget_json(dataclasses.asdict(applied.budget))
        spent = window.spent_micros if window else 0
        reserved = window.reserved_micros if window else 0
        doc.update(
            window_start=iso(applied.window_start),
            resets_at=iso(applied.resets_at),
            spent_usd=sample(spent),
            reserved_usd=sample(reserved),
            remaining_usd=sample(applied.budget.limit_micros - spent - reserved),
        )
        out.append(doc)
    return web.json_response({"budgets": out})


def _budget_json(doc: dict[str, Any]) -> dict[str, Any]:
    doc["limit_usd"] = sample(doc.pop("limit_micros"))
    return doc


async def budget_doc(store: Store, name: str) -> dict[str, Any] | None:
    """The budget ``name`` as the API shows it (its definition), ``None`` if there is none."""
    found = [b for b in await store.list_budgets() if b.name == name]
    return _budget_json(dataclasses.asdict(found[0])) if found else None


async def delete_budget(request: web.Request) -> web.Response:
    runtime, store = _runtime(request)
    name = request.match_info["name"]
    async with audit(request, "budget.delete", name) as entry:
        entry.before = await budget_doc(store, name)
        if not await store.delete_budget(name):
            raise NotFound(f"no budget {name!r}")
    if runtime.budgets is not None:
        runtime.budgets.invalidate()
    return web.json_response({"name": name, "deleted": True})


def _window(request: web.Request) -> tuple[float, float]:
    now = time.time()
    try:
        since = float(request.query.get("since") or now - 30 * 86400)
        until = float(request.query.get("until") or now + 1)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return since, until


async def get_report(request: web.Request) -> web.StreamResponse:
    """The spend report, aggregated by the store and streamed (CSV or JSON), or the FOCUS
    export (``format=focus``, as ``/admin/export/focus?format=csv``)."""
    _, store = _runtime(request)
    since, until = _window(request)
    try:
        group_by = report.parse_group_by(request.query.get("group_by", "day,team,model"))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    fmt = request.query.get("format", "json")
    if fmt == "focus":
        return await _focus(request, store, since, until, "csv")
    if fmt not in {"csv", "json"}:
        raise BadRequest(f"format takes csv, json or focus; got {fmt!r}")
    rows = await report.build(store, since, until, group_by)
    if fmt == "csv":
        return await streaming.respond(request, streaming.CSV, report.csv_chunks(rows, group_by))
    unexplained = await report.unexplained_spend(store)
    chunks = report.json_chunks(rows, since, until, group_by, unexplained)
    return await streaming.respond(request, streaming.JSON, chunks)


async def export_focus(request: web.Request) -> web.StreamResponse:
    """FOCUS 1.1 rows, one per terminal job submitted in the window (CSV, JSON or NDJSON),
    read in pages and streamed."""
    _, store = _runtime(request)
    since, until = _window(request)
    return await _focus(request, store, since, until, request.query.get("format", "csv"))


async def _focus(
    request: web.Request, store: LedgerReadStore, since: float, until: float, fmt: str
) -> web.StreamResponse:
    try:
        names = request.app[ADMIN_RUNTIME].accounts.display_names()
        content_type, chunks = focus.chunks(fmt, store, since, until, names)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    version = {focus.VERSION_HEADER: focus.FOCUS_VERSION}
    return await streaming.respond(request, content_type, chunks, version)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/admin/keys", create_key)
    app.router.add_get("/admin/keys", list_keys)
    app.router.add_delete("/admin/keys/{key_id}", revoke_key)
    app.router.add_put("/admin/budgets/{name}", put_budget)
    app.router.add_get("/admin/budgets", list_budgets)
    app.router.add_delete("/admin/budgets/{name}", delete_budget)
    app.router.add_get("/admin/report", get_report)
    app.router.add_get("/admin/export/focus", export_focus)
    add_webhook_routes(app)


__all__ = ["add_routes"]
