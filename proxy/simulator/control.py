"""Control endpoints, for a simulator running in another process.

They exist only on the simulator, never on api.modellix.ai, need no key, and are
neither counted nor logged as upstream traffic. Bad input answers 400, an unknown
model or task 404, in the upstream's envelope.

- ``GET  /_sim/state``     counters, balance, billed total, task counts by status,
                           ``max_active`` (per team, the most tasks running at one
                           instant), ``limits`` per team, switches
- ``GET  /_sim/billing``   billing records and their total in micro-dollars
- ``GET  /_sim/requests``  the request log (Authorization redacted)
- ``POST /_sim/faults``    queue a fault: ``{"name": "503", "count": 2, "route": "submit"}``
- ``DELETE /_sim/faults``  drop every queued fault
- ``POST /_sim/reset``     forget everything, as if freshly started
- ``GET|POST /_sim/switches``  ``{"report_billing": false}``: billing in task answers
- ``POST /_sim/prices``    ``{"slug": s, "price": 0.05 | {"720p": 0.1}, "list_follows": true}``
                           and/or ``{"slug": s, "listed_price": ... | null}``
- ``DELETE /_sim/prices/{provider}/{model}``, ``DELETE /_sim/schemas/{provider}/{model}``
                           back to the start (table and configuration)
- ``POST /_sim/schemas/{provider}/{model}``  ``{"properties": {name: schema}, "remove":
                           [names], "required": [names]}``: a changed published schema
- ``POST /_sim/topup``     ``{"team": "default", "usd": 25}``: balance and tier up
- ``POST /_sim/tasks/{task_id}/cancel``  end a running task as ``cancelled``
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from proxy.simulator.config import SchemaChange
from proxy.simulator.core import DEFAULT_TEAM, UpstreamError
from proxy.simulator.http import SIM, error, ok
from proxy.simulator.listing import NotServed, Offer
from proxy.simulator.schema_app import api_schema_document

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_control_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sim/state", state)
    r.add_get("/_sim/billing", billing)
    r.add_get("/_sim/requests", requests)
    r.add_post("/_sim/faults", _guarded(add_fault))
    r.add_delete("/_sim/faults", clear_faults)
    r.add_post("/_sim/reset", reset)
    r.add_get("/_sim/switches", switches)
    r.add_post("/_sim/switches", _guarded(set_switches))
    r.add_post("/_sim/prices", _guarded(set_price))
    r.add_delete("/_sim/prices/{provider}/{model}", _guarded(restore))
    r.add_post("/_sim/schemas/{provider}/{model}", _guarded(change_schema))
    r.add_delete("/_sim/schemas/{provider}/{model}", _guarded(restore))
    r.add_post("/_sim/topup", _guarded(top_up))
    r.add_post("/_sim/tasks/{task_id:.+}/cancel", _guarded(cancel))


def _guarded(handler: Handler) -> Handler:
    """Render bad input as 400 and an ``UpstreamError`` in its envelope."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except UpstreamError as exc:
            return error(exc.status, exc.message)
        except NotServed as exc:
            return error(404, f"Model not found: {exc.args[0]}")
        except KeyError as exc:
            return error(400, f"Invalid parameters: parameter {exc.args[0]!r} is required")
        except (ValueError, TypeError) as exc:
            return error(400, f"Invalid parameters: {exc}")

    return guarded


async def _object(request: web.Request) -> dict[str, Any]:
    value = json.loads(await request.read() or b"{}")
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


async def state(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[SIM].snapshot())


async def billing(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    records = [r.as_json() for r in sim.billing_records()]
    return web.json_response({"records": records, "total_micros": sim.billed_total_micros()})


async def requests(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    return web.json_response({"requests": [asdict(r) for r in sim.request_log]})


async def add_fault(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    spec = await _object(request)
    name, count, route = (
        str(spec["name"]),
        int(spec.get("count", 1)),
        str(spec.get("route", "any")),
    )
    sim.inject(name, count, route)
    return web.json_response({"queued": [i.as_json() for i in sim.faults.queue]})


async def clear_faults(request: web.Request) -> web.StreamResponse:
    request.app[SIM].faults.clear()
    return web.json_response({"queued": []})


async def reset(request: web.Request) -> web.StreamResponse:
    request.app[SIM].reset()
    return web.json_response({"reset": True})


async def switches(request: web.Request) -> web.StreamResponse:
    return ok({"report_billing": request.app[SIM].report_billing})


async def set_switches(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    spec = await _object(request)
    unknown = set(spec) - {"report_billing"}
    if unknown:
        raise ValueError(f"unknown switch {sorted(unknown)[0]!r}")
    if "report_billing" in spec:
        if not isinstance(spec["report_billing"], bool):
            raise ValueError("report_billing must be true or false")
        sim.report_billing = spec["report_billing"]
    return await switches(request)


def _offer_json(offer: Offer) -> dict[str, Any]:
    charged = offer.price
    price = (
        {k: float(v) for k, v in charged.items()}
        if isinstance(charged, Mapping)
        else float(charged)
    )
    return {**offer.list_item(), "charged": price}


async def set_price(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    spec = await _object(request)
    slug = str(spec["slug"])
    if "price" not in spec and "listed_price" not in spec:
        raise ValueError("give 'price' and/or 'listed_price'")
    offer = sim.listing.get(slug)
    if "price" in spec:
        list_follows = spec.get("list_follows", True)
        if not isinstance(list_follows, bool):
            raise ValueError("list_follows must be true or false")
        offer = sim.listing.set_price(slug, spec["price"], list_follows=list_follows)
    if "listed_price" in spec:
        offer = sim.listing.set_listed_price(slug, spec["listed_price"])
    return ok(_offer_json(offer))


def _slug(request: web.Request) -> str:
    return f"{request.match_info['provider']}/{request.match_info['model']}"


async def restore(request: web.Request) -> web.StreamResponse:
    offer = request.app[SIM].listing.restore(_slug(request))
    return ok({**_offer_json(offer), "schema": api_schema_document(offer)})


async def change_schema(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    change = SchemaChange.model_validate(await _object(request))
    offer = sim.listing.apply(_slug(request), change)
    return ok(api_schema_document(offer))


async def top_up(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    spec = await _object(request)
    team = str(spec.get("team", DEFAULT_TEAM))
    try:
        usd = Decimal(str(spec["usd"]))
    except InvalidOperation:
        raise ValueError("usd must be a number") from None
    sim.top_up(team, usd)
    return ok(
        {
            "team": team,
            "balance": float(sim.balance_usd(team)),
            "topups_usd": float(sim.topups_usd(team)),
            "limits": sim.limits(team).as_json(),
        }
    )


async def cancel(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    task = sim.cancel(request.match_info["task_id"])
    return ok(sim.task_payload(task)["data"])
