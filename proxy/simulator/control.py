"""Control endpoints, for a simulator running in another process.

They exist only on the simulator, never on api.modellix.ai, need no key, and are
neither counted nor logged as upstream traffic:

- ``GET  /_sim/state``     counters, balance, billed total, task counts by status, and
                           ``max_active``: per team, the most tasks running at one instant
- ``GET  /_sim/billing``   billing records and their total in micro-dollars
- ``GET  /_sim/requests``  the request log (Authorization redacted)
- ``POST /_sim/faults``    queue a fault: ``{"name": "503", "count": 2, "route": "submit"}``
- ``DELETE /_sim/faults``  drop every queued fault
- ``POST /_sim/reset``     forget everything, as if freshly started
"""

from __future__ import annotations

import json
from dataclasses import asdict

from aiohttp import web

from proxy.simulator.http import SIM


def add_control_routes(app: web.Application) -> None:
    app.router.add_get("/_sim/state", state)
    app.router.add_get("/_sim/billing", billing)
    app.router.add_get("/_sim/requests", requests)
    app.router.add_post("/_sim/faults", add_fault)
    app.router.add_delete("/_sim/faults", clear_faults)
    app.router.add_post("/_sim/reset", reset)


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
    try:
        spec = json.loads(await request.read())
        name, count, route = (
            str(spec["name"]),
            int(spec.get("count", 1)),
            str(spec.get("route", "any")),
        )
        sim.inject(name, count, route)
    except (ValueError, KeyError, TypeError) as exc:
        return web.json_response({"code": 400, "message": f"Invalid parameters: {exc}"}, status=400)
    return web.json_response({"queued": [i.as_json() for i in sim.faults.queue]})


async def clear_faults(request: web.Request) -> web.StreamResponse:
    request.app[SIM].faults.clear()
    return web.json_response({"queued": []})


async def reset(request: web.Request) -> web.StreamResponse:
    request.app[SIM].reset()
    return web.json_response({"reset": True})
