"""Running the proxy: client listener (optionally TLS), admin listener, graceful stop."""

from __future__ import annotations

import asyncio
import gc
import signal
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import structlog
from aiohttp import web

from proxy.admin import create_admin_app
from proxy.app import create_app
from proxy.config import Settings
from proxy.state import METRICS, RUNTIME
from proxy.telemetry.tracing import Tracing

log = structlog.get_logger("proxy.server")
T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], event_loop: Literal["auto", "uvloop", "asyncio"]) -> T:
    """Run ``main`` to completion on uvloop (``auto``: when installed) or asyncio's own loop."""
    if event_loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if event_loop == "uvloop":
                main.close()
                raise RuntimeError("event_loop: uvloop is not installed") from None
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    listen = settings.listen
    if listen.tls_cert_file is None or listen.tls_key_file is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(listen.tls_cert_file), str(listen.tls_key_file))
    return ctx


@dataclass
class Running:
    """A started proxy: its runners and the ports it really listens on."""

    app: web.Application
    runner: web.AppRunner
    admin_runner: web.AppRunner | None
    port: int
    admin_port: int | None
    scheme: str

    @property
    def base_url(self) -> str:
        host = "127.0.0.1"
        return f"{self.scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish within the grace period, close."""
        await self.runner.cleanup()
        if self.admin_runner is not None:
            await self.admin_runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])


async def start(
    settings: Settings,
    app: web.Application | None = None,
    *,
    tracing: Tracing | None = None,
    environ: Mapping[str, str] | None = None,
) -> Running:
    """Start the listeners; tracing is ``tracing`` or built from ``OTEL_*`` in ``environ``."""
    app = app if app is not None else create_app(settings, tracing=tracing, environ=environ)
    runner = web.AppRunner(app, shutdown_timeout=settings.shutdown_grace_seconds, access_log=None)
    await runner.setup()
    tls = tls_context(settings)
    admin_runner = None
    admin_port = None
    # The admin listener first: once clients can connect, /metrics and /admin are up too.
    if settings.admin.enabled:
        admin_app = create_admin_app(settings, app[METRICS], app[RUNTIME])
        admin_runner = web.AppRunner(admin_app, access_log=None)
        await admin_runner.setup()
        await web.TCPSite(admin_runner, settings.admin.host, settings.admin.port).start()
        admin_port = _bound_port(admin_runner)
    site = web.TCPSite(runner, settings.listen.host, settings.listen.port, ssl_context=tls)
    await site.start()
    # What start-up built (catalog, compiled schemas, stages) lives as long as the process:
    # out of the collector's way, so a full collection never walks it in mid-request.
    gc.freeze()
    running = Running(
        app, runner, admin_runner, _bound_port(runner), admin_port, "https" if tls else "http"
    )
    log.info(
        "proxy.started",
        base_url=running.base_url,
        admin_port=admin_port,
        upstream=settings.upstream.origin,
    )
    return running


async def serve_forever(
    settings: Settings,
    on_started: Callable[[Running], Awaitable[None]] | None = None,
    *,
    tracing: Tracing | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully (``tracing`` stays the caller's)."""
    running = await start(settings, tracing=tracing)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if on_started is not None:
        await on_started(running)
    await stop.wait()
    log.info("proxy.stopping", grace_seconds=settings.shutdown_grace_seconds)
    await running.stop()
    log.info("proxy.stopped")
