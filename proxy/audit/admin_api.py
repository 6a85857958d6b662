"""The audit trail and the admin credentials in the admin API.

GET    /admin/audit?since=&until=&actor=&action=&subject=&limit=&after=   rows in chain order;
                                                  ``next_cursor`` pages on (``after``)
GET    /admin/tokens?include_revoked=true         the stored admin credentials (never a secret)
POST   /admin/tokens                              {"name": ..., "role": viewer|finance|operator}:
                                                  the token is in this answer only
POST   /admin/tokens/{token_id}/rotate            a new secret (the old one stops working)
DELETE /admin/tokens/{token_id}                   revoke

Adding, rotating and revoking a token are themselves recorded in the audit trail.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from proxy.admin_access import ADMIN_CREDENTIALS, audit
from proxy.admin_input import epoch_seconds, json_body
from proxy.audit.tokens import (
    fresh_secret,
    new_admin_token,
    token_json,
    valid_name,
)
from proxy.errors import BadRequest, Conflict, NotFound
from proxy.governance.keys import hash_key
from proxy.state import ADMIN_RUNTIME
from proxy.stores.audit_records import AuditRow, Role
from proxy.stores.base import DuplicateKeyError, Store


def _store(request: web.Request) -> Store:
    return request.app[ADMIN_RUNTIME].open_store()


def row_json(row: AuditRow) -> dict[str, Any]:
    return {
        "seq": row.seq, "at": row.at, "actor": row.actor, "origin": row.origin,
        "peer": row.peer, "request_id": row.request_id, "action": row.action,
        "subject": row.subject, "before": row.before, "after": row.after,
        "prev_hash": row.prev_hash, "hash": row.hash,
    }  # fmt: skip


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        return max(low, min(high, int(raw)))
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {raw!r}") from None


async def list_audit(request: web.Request) -> web.Response:
    query = request.query
    limit = _int(request, "limit", 100, 1, 1000)
    rows = await _store(request).audit_rows(
        after_seq=_int(request, "after", 0, 0, 2**62),
        limit=limit,
        since=epoch_seconds(request, "since"),
        until=epoch_seconds(request, "until"),
        actor=query.get("actor") or None,
        action=query.get("action") or None,
        subject=query.get("subject") or None,
    )
    cursor = str(rows[-1].seq) if len(rows) == limit else None
    return web.json_response({"rows": [row_json(r) for r in rows], "next_cursor": cursor})


async def list_tokens(request: web.Request) -> web.Response:
    every = request.query.get("include_revoked", "") in {"1", "true", "yes"}
    tokens = await _store(request).list_admin_tokens(include_revoked=every)
    return web.json_response({"tokens": [token_json(t) for t in tokens]})


async def add_token(request: web.Request) -> web.Response:
    body = await json_body(request)
    name = body.get("name") if isinstance(body, dict) else None
    role = body.get("role") if isinstance(body, dict) else None
    if not isinstance(name, str) or not valid_name(name):
        raise BadRequest(
            "name: 1-64 letters, digits and ._@- (and not 'config', the configured token)"
        )
    if role not in {r.value for r in Role}:
        raise BadRequest(f"role is one of {', '.join(r.value for r in Role)}")
    record, token = new_admin_token(name, Role(role), time.time())
    try:
        async with audit(request, "admin_token.add", record.token_id) as entry:
            stored = await _store(request).create_admin_token(record)
            entry.after = token_json(stored)
    except DuplicateKeyError:
        raise Conflict(f"an active admin token is already named {name!r}") from None
    request.app[ADMIN_CREDENTIALS].forget()  # the new token works here from the next request
    return web.json_response({"token": token, **token_json(stored)}, status=201)


async def rotate_token(request: web.Request) -> web.Response:
    token_id = request.match_info["token_id"]
    token = fresh_secret(token_id)
    store = _store(request)
    async with audit(request, "admin_token.rotate", token_id) as entry:
        before = await store.get_admin_token(token_id)
        rotated = await store.rotate_admin_token(token_id, hash_key(token), time.time())
        if before is None or rotated is None:
            raise NotFound(f"no active admin token {token_id!r}")
        entry.before, entry.after = token_json(before), token_json(rotated)
    request.app[ADMIN_CREDENTIALS].forget()  # the old secret stops here at once
    return web.json_response({"token": token, **token_json(rotated)})


async def revoke_token(request: web.Request) -> web.Response:
    token_id = request.match_info["token_id"]
    store = _store(request)
    async with audit(request, "admin_token.revoke", token_id) as entry:
        before = await store.get_admin_token(token_id)
        if before is None or not await store.revoke_admin_token(token_id, time.time()):
            raise NotFound(f"no active admin token {token_id!r}")
        after = await store.get_admin_token(token_id)
        entry.before, entry.after = token_json(before), token_json(after) if after else None
    request.app[ADMIN_CREDENTIALS].forget()
    return web.json_response({"token_id": token_id, "revoked": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/audit", list_audit)
    app.router.add_get("/admin/tokens", list_tokens)
    app.router.add_post("/admin/tokens", add_token)
    app.router.add_post("/admin/tokens/{token_id}/rotate", rotate_token)
    app.router.add_delete("/admin/tokens/{token_id}", revoke_token)
