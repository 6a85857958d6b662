"""The webhook part of the admin API.

GET    /admin/webhooks/deliveries?state=pending|delivered|dead&limit=100
GET    /admin/webhooks/deliveries/{id}              by delivery id (Webhook-Id) or task id
POST   /admin/webhooks/deliveries/{id}/redeliver    due again now, same Webhook-Id, fresh budget
GET    /admin/webhooks/endpoints                    per-caller default callback URLs
PUT    /admin/webhooks/endpoints/{caller}           {"url": "https://..."}; caller vk:<id>|fp:<fp>
DELETE /admin/webhooks/endpoints/{caller}
GET    /admin/balance                               the last balance reconciliation per team
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from aiohttp import web

from proxy.admin_access import audit
from proxy.catalog.preflight import parse_image_url
from proxy.errors import BadRequest, NotFound
from proxy.money import exact
from proxy.state import ADMIN_RUNTIME
from proxy.stores.base import Store
from proxy.stores.webhook_records import BalanceReading, Delivery, DeliveryState


def _store(request: web.Request) -> Store:
    return request.app[ADMIN_RUNTIME].open_store()


def delivery_json(d: Delivery, *, body: bool = False) -> dict[str, Any]:
    doc = dataclasses.asdict(d)
    doc["state"] = d.state.value
    if not body:
        doc.pop("body")
    return doc


def reading_json(r: BalanceReading) -> dict[str, Any]:
    return {
        "team": r.team,
        "balance_usd": exact(r.balance_micros),
        "read_at": r.read_at,
        "since": r.first_read_at,
        "unexplained_usd": exact(r.unexplained_micros),
        "topups_usd": exact(r.topup_micros),
        "window_drop_usd": exact(r.window_drop_micros),
        "window_ledger_usd": exact(r.window_ledger_micros),
        "window_unexplained_usd": exact(r.window_unexplained_micros),
    }


async def list_deliveries(request: web.Request) -> web.Response:
    raw = request.query.get("state")
    try:
        state = DeliveryState(raw) if raw else None
        limit = max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError:
        raise BadRequest("state is pending, delivered or dead; limit an integer") from None
    found = await _store(request).list_deliveries(state=state, limit=limit)
    return web.json_response({"deliveries": [delivery_json(d) for d in found]})


async def get_delivery(request: web.Request) -> web.Response:
    found = await _store(request).get_delivery(request.match_info["delivery_id"])
    if found is None:
        raise NotFound("no such delivery")
    return web.json_response(delivery_json(found, body=True))


async def redeliver(request: web.Request) -> web.Response:
    delivery_id = request.match_info["delivery_id"]
    store = _store(request)
    async with audit(request, "webhook.redeliver", delivery_id) as entry:
        before = await store.get_delivery(delivery_id)
        if before is None or not await store.redeliver(delivery_id, time.time()):
            raise NotFound("no such delivery")
        after = await store.get_delivery(delivery_id)
        entry.before = delivery_json(before)
        entry.after = delivery_json(after) if after is not None else None
    return web.json_response({"delivery_id": delivery_id, "state": "pending"}, status=202)


async def list_endpoints(request: web.Request) -> web.Response:
    return web.json_response({"endpoints": await _store(request).list_webhook_endpoints()})


async def put_endpoint(request: web.Request) -> web.Response:
    caller = request.match_info["caller"]
    if not caller.startswith(("vk:", "fp:")):
        raise BadRequest("caller is vk:<key id> or fp:<key fingerprint>")
    try:
        body = await request.json()
        url = body["url"]
        if not isinstance(url, str):
            raise TypeError("url")
        parse_image_url(url)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BadRequest(f'the body must be {{"url": "<http(s) URL>"}} ({exc})') from None
    store = _store(request)
    async with audit(request, "webhook_endpoint.put", caller) as entry:
        entry.before = {"url": await store.get_webhook_endpoint(caller)}
        await store.set_webhook_endpoint(caller, url, time.time())
        entry.after = {"url": url}
    return web.json_response({"caller": caller, "url": url})


async def delete_endpoint(request: web.Request) -> web.Response:
    caller = request.match_info["caller"]
    store = _store(request)
    async with audit(request, "webhook_endpoint.delete", caller) as entry:
        entry.before = {"url": await store.get_webhook_endpoint(caller)}
        if not await store.set_webhook_endpoint(caller, None, time.time()):
            raise NotFound(f"no callback URL for {caller!r}")
        entry.after = {"url": None}
    return web.json_response({"caller": caller, "deleted": True})


async def get_balance(request: web.Request) -> web.Response:
    readings = await _store(request).list_balance_readings()
    return web.json_response({"teams": [reading_json(r) for r in readings]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/webhooks/deliveries", list_deliveries)
    app.router.add_get("/admin/webhooks/deliveries/{delivery_id}", get_delivery)
    app.router.add_post("/admin/webhooks/deliveries/{delivery_id}/redeliver", redeliver)
    app.router.add_get("/admin/webhooks/endpoints", list_endpoints)
    app.router.add_put("/admin/webhooks/endpoints/{caller}", put_endpoint)
    app.router.add_delete("/admin/webhooks/endpoints/{caller}", delete_endpoint)
    app.router.add_get("/admin/balance", get_balance)
