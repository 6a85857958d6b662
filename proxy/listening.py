"""Binding the proxy's ports so that a restart works at once, whatever the port has seen.

A proxy that served traffic leaves server-side ``TIME_WAIT`` sockets on its port for up
to a minute after it exits (kill -9, crash, or a stop that closed keep-alive connections).
Both ways of serving bind with ``SO_REUSEADDR``, which lets a new listener take a port
that only such sockets hold; where workers share the port, with ``SO_REUSEPORT`` too.

``SO_REUSEPORT`` would also let a new group join a port that a *live* server of the same
user listens on, and silently share its traffic. So before reserving a port the
supervisor probes it (``live_listener``: a loopback connect): while something accepts
there, it waits, briefly (a previous group's workers may still be finishing their
requests), then refuses to start. Any other failure to bind (the old process not gone
yet, a socket bound elsewhere without the options) is retried for the same short time.
Either way, what is finally reported is one line (``PortUnavailable``), no traceback.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

log = structlog.get_logger("proxy.listening")

RETRY_SECONDS = 10.0
"""How long a port that cannot be bound, or that a live server holds, is tried again."""
RETRY_EVERY_SECONDS = 0.1
PROBE_TIMEOUT_SECONDS = 0.5
_WILDCARDS = {"": ("127.0.0.1", "::1"), "0.0.0.0": ("127.0.0.1",), "::": ("::1", "127.0.0.1")}
T = TypeVar("T")


class PortUnavailable(OSError):
    """The port could not be bound within ``RETRY_SECONDS``; the message is one line."""


def probe_addresses(host: str | None) -> tuple[str, ...]:
    """Where to look for a live server on ``host`` (a wildcard: the loopback addresses)."""
    return _WILDCARDS.get(host or "", (host or "127.0.0.1",))


def live_listener(host: str | None, port: int) -> str | None:
    """``address:port`` where a server accepts connections now, or ``None``."""
    if port == 0:
        return None
    for address in probe_addresses(host):
        try:
            infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            continue
        for family, kind, proto, _, where in infos:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(PROBE_TIMEOUT_SECONDS)
                try:
                    sock.connect(where)
                except OSError:  # refused, unreachable, filtered: nobody accepts there
                    continue
                return f"{where[0]}:{port}"
    return None


def _describe(host: str | None, port: int) -> str:
    return f"{host or '*'}:{port}"


async def bind_retrying(
    what: str,
    host: str | None,
    port: int,
    bind: Callable[[], Awaitable[T]],
    *,
    probe: bool = False,
    within: float = RETRY_SECONDS,
) -> T:
    """``await bind()``, retried on ``OSError`` for ``within`` seconds.

    ``probe``: first wait, for the same time, until no live server accepts on the port
    (needed where ``SO_REUSEPORT`` would let the bind succeed beside it). ``what`` names
    the listener in the messages (``listen``, ``admin``).
    """
    deadline = time.monotonic() + within
    said = False
    while probe:
        holder = await asyncio.to_thread(live_listener, host, port)
        if holder is None:
            break
        if time.monotonic() >= deadline:
            raise PortUnavailable(
                errno.EADDRINUSE,
                f"{what}: cannot bind {_describe(host, port)}: address already in use: "
                f"a live server accepts connections at {holder} (waited {within:g} s)",
            )
        if not said:
            log.warning(
                "listen.port_busy",
                listener=what,
                address=_describe(host, port),
                holder=holder,
                waiting_seconds=within,
            )
            said = True
        await asyncio.sleep(RETRY_EVERY_SECONDS)
    while True:
        try:
            return await bind()
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise PortUnavailable(
                    exc.errno or errno.EADDRINUSE,
                    f"{what}: cannot bind {_describe(host, port)}: {exc.strerror or exc} "
                    f"(retried for {within:g} s)",
                ) from exc
            if not said:
                log.warning(
                    "listen.bind_retry",
                    listener=what,
                    address=_describe(host, port),
                    error=str(exc),
                    retrying_seconds=within,
                )
                said = True
        await asyncio.sleep(RETRY_EVERY_SECONDS)


def reserve_port(host: str, port: int) -> tuple[list[socket.socket], int]:
    """Bind ``host:port`` on every address of ``host``, not listening (a supervisor's hold).

    ``SO_REUSEADDR`` (``TIME_WAIT`` sockets of an earlier server do not block it) and
    ``SO_REUSEPORT`` (the workers' listening sockets share the port). The port stays
    the supervisor's between worker restarts. Port 0 becomes the port the kernel picked
    for the first address.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    held: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            held.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address[0], port, *address[2:]))
            port = port or int(sock.getsockname()[1])
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return held, port


async def reserve_port_retrying(what: str, host: str, port: int) -> tuple[list[socket.socket], int]:
    """``reserve_port`` after the live-listener probe, retried briefly (``bind_retrying``)."""

    async def bind() -> tuple[list[socket.socket], int]:
        return reserve_port(host, port)

    return await bind_retrying(what, host, port, bind, probe=True)
