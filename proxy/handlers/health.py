"""The proxy's own liveness and readiness answers."""

from __future__ import annotations

from aiohttp import web

from proxy.state import READY


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks = await request.app[READY]()
    ready = all(ok for ok in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )
