"""The admin listener: ``/metrics`` and the operator API, apart from client traffic."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from proxy.config import Settings
from proxy.handlers.health import healthz
from proxy.middleware import error_response
from proxy.errors import Unauthorized
from proxy.telemetry.metrics import Metrics

CLIENT_APP = web.AppKey("client_app", web.Application)
ADMIN_TOKEN = web.AppKey("admin_token", str)


async def metrics_handler(request: web.Request) -> web.Response:
    registry = request.app[ADMIN_METRICS].registry
    if "application/openmetrics-text" in request.headers.get("Accept", ""):
        return web.Response(body=generate_openmetrics(registry), headers={"Content-Type": OPENMETRICS})
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


ADMIN_METRICS = web.AppKey("admin_metrics", Metrics)


@web.middleware
async def require_token(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:  # type: ignore[name-defined]
    if request.path.startswith("/admin/"):
        token = request.app.get(ADMIN_TOKEN)
        given = request.headers.get("Authorization", "")
        if not token:
            return error_response(Unauthorized("the admin API is disabled: set admin.token"), "admin")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return error_response(Unauthorized("admin token missing or wrong"), "admin")
    return await handler(request)


def create_admin_app(settings: Settings, metrics: Metrics, client_app: web.Application) -> web.Application:
    app = web.Application(middlewares=[require_token])
    app[ADMIN_METRICS] = metrics
    app[CLIENT_APP] = client_app
    token = settings.admin_token()
    if token:
        app[ADMIN_TOKEN] = token
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    return app
