"""Running the proxy: client listener (optionally TLS), admin listener, graceful stop.

Both listeners bind with SO_REUSEADDR, so a restart on a port that a busy proxy has
just left works at once; a bind that fails is retried briefly (``proxy.listening``).

``serve_forever(..., worker=role)`` runs one worker of ``serve --workers N``
(``proxy.workers``): the client port is shared (SO_REUSEPORT), the admin listener is
worker 0's, and the worker stops with its supervisor.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import structlog
from aiohttp import web

from proxy.admin import create_admin_app
from proxy.app import create_app
from proxy.config import Settings
from proxy.listening import bind_retrying
from proxy.protocol_errors import ProtocolErrorRunner
from proxy.state import METRICS, RUNTIME
from proxy.telemetry.scope import bind_process
from proxy.telemetry.tracing import Tracing
from proxy.workers import (
    WorkerRole,
    die_with_supervisor,
    orphaned_metrics,
    report_ready,
    watch_supervisor,
)

log = structlog.get_logger("proxy.server")
T = TypeVar("T")
# gc.set_threshold after start-up: (first generation, second, third); Python's are (700, 10, 10).
GC_THRESHOLDS = (10_000, 10, 10)


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


async def _start_site(
    what: str,
    runner: web.AppRunner,
    host: str,
    port: int,
    reuse_port: bool,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Listen on ``host:port`` with SO_REUSEADDR (asyncio's default on POSIX), SO_REUSEPORT
    as a worker; a failed bind is retried briefly (``proxy.listening``). One process alone
    first looks for a live server there (a worker's siblings are live servers)."""

    async def bind() -> None:
        site = web.TCPSite(
            runner, host, port, ssl_context=tls, reuse_address=True, reuse_port=reuse_port or None
        )
        try:
            await site.start()
        except BaseException:
            await site.stop()  # unregistered from the runner: the next try adds a new site
            raise

    await bind_retrying(what, host, port, bind, probe=not reuse_port)


async def start(
    settings: Settings,
    app: web.Application | None = None,
    *,
    tracing: Tracing | None = None,
    environ: Mapping[str, str] | None = None,
    reuse_port: bool = False,
    admin: bool = True,
    metrics_dir: Path | None = None,
) -> Running:
    """Start the listeners; tracing is ``tracing`` or built from ``OTEL_*`` in ``environ``.

    ``reuse_port``: share the ports with other workers (SO_REUSEPORT); ``admin=False``: no
    admin listener here (another worker has it); ``metrics_dir``: the workers' multiprocess
    metrics directory, which ``/metrics`` reports as a whole.
    """
    if app is None:
        # A worker without the admin listener exports nothing of its own: the shared
        # gauges (the same store sums in every worker) are read by the one that does.
        app = create_app(settings, tracing=tracing, environ=environ, shared_gauges=admin)
    protocol_errors = app[METRICS].http_protocol_errors
    runner = ProtocolErrorRunner(
        app, protocol_errors, shutdown_timeout=settings.shutdown_grace_seconds, access_log=None
    )
    await runner.setup()
    tls = tls_context(settings)
    admin_runner = None
    admin_port = None
    # The admin listener first: once clients can connect, /metrics and /admin are up too.
    if settings.admin.enabled and admin:
        admin_app = create_admin_app(settings, app[METRICS], app[RUNTIME], metrics_dir=metrics_dir)
        admin_runner = ProtocolErrorRunner(admin_app, protocol_errors, access_log=None)
        await admin_runner.setup()
        await _start_site(
            "admin", admin_runner, settings.admin.host, settings.admin.port, reuse_port
        )
        admin_port = _bound_port(admin_runner)
    await _start_site("listen", runner, settings.listen.host, settings.listen.port, reuse_port, tls)
    # What start-up built (catalog, compiled schemas, stages) lives as long as the process:
    # out of the collector's way, so a full collection never walks it in mid-request.
    gc.freeze()
    # Requests in flight hold many young objects at once, so Python's first-generation
    # threshold (700) ran the collector thousands of times a minute under load, about 5 % of
    # a forwarded poll's CPU; at 10,000 it hardly runs after start-up (bench/README.md).
    gc.set_threshold(*GC_THRESHOLDS)
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
    worker: WorkerRole | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully (``tracing`` stays the caller's).

    As a ``worker`` of a supervisor: share the ports, serve the admin listener only as
    worker 0, tell the supervisor once listening, and stop when the supervisor is gone.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Before anything else: a SIGTERM during start-up (a worker's supervisor killed while it
    # starts: PR_SET_PDEATHSIG) then stops the proxy once started, instead of killing the
    # process on the spot and leaving what a clean stop removes.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if worker is not None:
        die_with_supervisor(worker)
        bind_process(worker=worker.index)  # on every line this worker writes
        running = await start(
            settings,
            tracing=tracing,
            reuse_port=True,
            admin=worker.serves_admin,
            metrics_dir=worker.metrics_dir,
        )
    else:
        running = await start(settings, tracing=tracing)
    watching: asyncio.Task[None] | None = None
    if worker is not None:
        watching = loop.create_task(watch_supervisor(worker, stop), name="watch-supervisor")
        report_ready(worker)
    if on_started is not None:
        await on_started(running)
    await stop.wait()
    if watching is not None:
        watching.cancel()
    log.info("proxy.stopping", grace_seconds=settings.shutdown_grace_seconds)
    try:
        await running.stop()
    finally:  # a stop that failed still leaves nothing of a dead supervisor's behind
        if worker is not None:
            orphaned_metrics(worker)
    log.info("proxy.stopped")
