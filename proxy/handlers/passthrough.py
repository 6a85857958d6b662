"""Transparent pass-through for the allow-listed ``/api/v1/...`` routes, streamed both ways.

The upstream receives the normalized path ``proxy.routing`` approved, never the raw one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

from proxy.errors import PayloadTooLarge
from proxy.forwarding import upstream_headers
from proxy.governance import access
from proxy.state import CONTEXT, ROUTE, RUNTIME, SETTINGS, UPSTREAM
from proxy.upstream.client import TransportFailure, end_to_end
from proxy.upstream.failures import transport_error

log = structlog.get_logger("proxy.passthrough")
CHUNK = 256 * 1024


class _Limited:
    """The request body as an async iterator that stops past ``limit`` bytes."""

    def __init__(self, content: aiohttp.StreamReader, limit: int) -> None:
        self._content = content
        self._limit = limit
        self.overflowed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._content.iter_chunked(CHUNK):
            seen += len(chunk)
            if seen > self._limit:
                self.overflowed = True
                raise PayloadTooLarge(f"request body exceeds {self._limit} bytes")
            yield chunk


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds the proxy's limit of {limit} bytes")


async def handle_passthrough(request: web.Request) -> web.StreamResponse:
    ctx = request[CONTEXT]
    settings = request.app[SETTINGS]
    upstream = request.app[UPSTREAM]
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    body: _Limited | None = None
    if request.body_exists:
        body = _Limited(request.content, limit)
    headers = upstream_headers(request, settings, keep_length=True)
    identity = await access.identify(
        request.app[RUNTIME].keyring, request.headers.get("Authorization")
    )
    access.swap(headers, identity)
    started = time.perf_counter()
    ctx.upstream_attempts = 1
    try:
        resp = await upstream.open(
            request.method,
            request[ROUTE].target,
            headers,
            body.__aiter__() if body else None,
            "passthrough",
        )
    except TransportFailure as failure:
        if body is not None and body.overflowed:
            raise too_large(limit) from failure
        raise transport_error(failure, paid=False) from failure
    except PayloadTooLarge:
        raise too_large(limit) from None
    ctx.upstream_seconds = time.perf_counter() - started
    try:
        out = web.StreamResponse(status=resp.status, reason=resp.reason)
        out.headers.extend(end_to_end(resp.headers))
        if resp.content_length is not None:
            out.content_length = resp.content_length
        await out.prepare(request)
        try:
            async for chunk in resp.content.iter_chunked(CHUNK):
                await out.write(chunk)
        except aiohttp.ClientError:
            # Headers are gone already: the only honest signal left is a cut connection.
            log.warning("passthrough.upstream_cut_mid_body", status=resp.status)
            if request.transport is not None:
                request.transport.abort()
            return out
        await out.write_eof()
        return out
    finally:
        resp.release()
