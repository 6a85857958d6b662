"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from proxy.config import Settings
from proxy.context import RequestContext
from proxy.errors import ProxyError
from proxy.routing import Route
from proxy.runtime import Runtime
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.tracing import Tracing
from proxy.upstream.client import Upstream
from proxy.upstream.retry import RetryPolicy

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
UPSTREAM = web.AppKey("upstream", Upstream)
TRACING = web.AppKey("tracing", Tracing)


class RejectionCounter(Protocol):
    async def __call__(self, ctx: RequestContext, err: ProxyError) -> None: ...


class ReadinessCheck(Protocol):
    async def __call__(self) -> dict[str, bool]: ...


REJECTIONS = web.AppKey("rejections", RejectionCounter)
CONTEXT = web.RequestKey("context", RequestContext)
ROUTE = web.RequestKey("route", Route)

SUBMIT_POLICY = web.AppKey("submit_policy", RetryPolicy)
POLL_POLICY = web.AppKey("poll_policy", RetryPolicy)
READY = web.AppKey("ready", ReadinessCheck)
RUNTIME = web.AppKey("runtime", Runtime)
ADMIN_RUNTIME = web.AppKey("admin_runtime", Runtime)
