"""Pass-through fidelity: what the client sends reaches the upstream, and back."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from tests.support import EchoUpstream, envelope

KEY = "Bearer sk-test-0123456789"


async def test_get_passes_method_path_query_and_authorization(
    echo: EchoUpstream, proxy_url: str, http: aiohttp.ClientSession
) -> None:
    """A GET reaches the upstream with its path, query and Authorization unchanged."""
    async with http.get(
        f"{proxy_url}/api/v1/models?category=video&page=2", headers={"Authorization": KEY}
    ) as resp:
        assert resp.status == 200
        await resp.read()
    seen = echo.seen[-1]
    assert seen.method == "GET"
    assert seen.path == "/api/v1/models?category=video&page=2"
    assert seen.headers["Authorization"] == KEY


async def test_hop_by_hop_headers_dropped_and_forwarded_headers_set(
    echo: EchoUpstream, proxy_url: str, http: aiohttp.ClientSession
) -> None:
    """Hop-by-hop headers (and any named in Connection) stop here; X-Forwarded-* are set."""
    headers = {
        "Authorization": KEY,
        "Connection": "keep-alive, X-Private-Hop",
        "X-Private-Hop": "secret",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic abc",
        "X-Custom": "kept",
    }
    async with http.get(f"{proxy_url}/api/v1/team/balance", headers=headers) as resp:
        await resp.read()
    seen = echo.seen[-1].headers
    lowered = {k.lower() for k in seen}
    assert "x-private-hop" not in lowered
    assert "keep-alive" not in lowered
    assert "proxy-authorization" not in lowered
    assert seen["X-Custom"] == "kept"
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-Host"] == proxy_url.removeprefix("http://")


async def test_no_automatic_client_headers_added(
    echo: EchoUpstream, proxy_url: str, http: aiohttp.ClientSession
) -> None:
    """The upstream sees the client's own User-Agent and Accept-Encoding, and none of aiohttp's."""
    bare = ["User-Agent", "Accept-Encoding", "Accept"]
    async with http.get(
        f"{proxy_url}/api/v1/team/balance", headers={"Authorization": KEY}, skip_auto_headers=bare
    ) as resp:
        await resp.read()
    lowered = {k.lower() for k in echo.seen[-1].headers}
    assert "user-agent" not in lowered
    assert "accept-encoding" not in lowered
    assert echo.seen[-1].headers["Accept"] == "*/*"  # what aiohttp adds and we keep
    own = {"Authorization": KEY, "User-Agent": "cli/1", "Accept-Encoding": "br", "Accept": "a/b"}
    async with http.get(f"{proxy_url}/api/v1/team/balance", headers=own) as resp:
        await resp.read()
    seen = echo.seen[-1].headers
    assert (seen["User-Agent"], seen["Accept-Encoding"], seen["Accept"]) == ("cli/1", "br", "a/b")


async def test_untrusted_forwarded_headers_are_replaced(
    echo: EchoUpstream, proxy_url: str, http: aiohttp.ClientSession
) -> None:
    """A client cannot spoof X-Forwarded-For or -Proto unless the proxy is told to trust them."""
    headers = {
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil",
    }
    async with http.get(f"{proxy_url}/api/v1/models", headers=headers) as resp:
        await resp.read()
    seen = echo.seen[-1].headers
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-Host"] != "evil"


@pytest.mark.parametrize("size", [0, 1, 65_537, 20 * 1024 * 1024])
async def test_request_bodies_stream_intact(
    size: int, echo: EchoUpstream, proxy_url: str, http: aiohttp.ClientSession
) -> None:
    """Request bodies from 0 B to 20 MiB reach the upstream byte for byte."""
    body = os.urandom(size)
    async with http.post(
        f"{proxy_url}/api/v1/media/files",
        data=io.BytesIO(body),
        headers={"Authorization": KEY, "Content-Type": "application/octet-stream"},
    ) as resp:
        assert resp.status == 200
        doc = envelope(await resp.read())
    assert doc["data"]["size"] == size
    assert doc["data"]["sha256"] == hashlib.sha256(body).hexdigest()


async def test_chunked_request_body_streams_intact(
    echo: EchoUpstream, proxy_url: str, http: aiohttp.ClientSession
) -> None:
    """A chunked upload (no Content-Length) is streamed through unchanged."""
    parts = [os.urandom(100_000) for _ in range(5)]

    async def gen() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async with http.post(f"{proxy_url}/api/v1/media/files", data=gen()) as resp:
        doc = envelope(await resp.read())
    assert doc["data"]["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()


async def test_large_response_streams_intact(
    echo: EchoUpstream, proxy_url: str, http: aiohttp.ClientSession
) -> None:
    """A 20 MiB upstream answer reaches the client byte for byte, with its own headers."""
    payload = os.urandom(20 * 1024 * 1024)

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"X-Upstream": "yes", "Content-Type": "video/mp4"})
        await resp.prepare(request)
        for i in range(0, len(payload), 1 << 20):
            await resp.write(payload[i : i + (1 << 20)])
        await resp.write_eof()
        return resp

    echo.handlers["/api/v1/media/files"] = big
    async with http.get(f"{proxy_url}/api/v1/media/files") as resp:
        data = await resp.read()
        assert resp.headers["X-Upstream"] == "yes"
        assert resp.headers["Content-Type"] == "video/mp4"
    assert hashlib.sha256(data).digest() == hashlib.sha256(payload).digest()


@pytest.mark.parametrize("status", [201, 204, 400, 401, 402, 404, 409, 429, 500, 503])
async def test_status_and_error_envelope_pass_unchanged(
    status: int, echo: EchoUpstream, proxy_url: str, http: aiohttp.ClientSession
) -> None:
    """Upstream status codes and error bodies reach the client exactly as sent."""
    raw = b'{"code":%d,"message":"Invalid parameters: parameter \'x\' is required"}' % status

    async def answer(_request: web.Request) -> web.StreamResponse:
        if status == 204:
            return web.Response(status=204)
        return web.Response(
            status=status,
            body=raw,
            content_type="application/json",
            headers={"X-RateLimit-Reset": "1710000000"},
        )

    echo.handlers["/api/v1/apikey"] = answer
    async with http.get(f"{proxy_url}/api/v1/apikey/validate") as resp:
        assert resp.status == status
        body = await resp.read()
    if status != 204:
        assert body == raw
        assert resp.headers["X-RateLimit-Reset"] == "1710000000"


async def test_request_id_is_echoed_or_made(proxy_url: str, http: aiohttp.ClientSession) -> None:
    """A valid X-Request-Id is echoed back; a missing or hostile one is replaced with a fresh id."""
    async with http.get(f"{proxy_url}/api/v1/models", headers={"X-Request-Id": "abc-123"}) as resp:
        assert resp.headers["X-Request-Id"] == "abc-123"
    async with http.get(
        f"{proxy_url}/api/v1/models", headers={"X-Request-Id": "bad id; drop"}
    ) as resp:
        assert resp.headers["X-Request-Id"] != "bad id; drop"
        assert len(resp.headers["X-Request-Id"]) == 32


async def test_declared_oversize_body_refused_without_upstream_call(
    echo: EchoUpstream,
    make_proxy: Callable[..., Awaitable[str]],
    echo_url: str,
    http: aiohttp.ClientSession,
) -> None:
    """A body declared larger than the limit gets 413 in the upstream envelope and never leaves."""
    url = await make_proxy(echo_url, max_body_bytes=4096)
    async with http.post(f"{url}/api/v1/media/files", data=b"x" * 5000) as resp:
        assert resp.status == 413
        doc = envelope(await resp.read())
    assert doc["code"] == 413
    assert doc["message"].startswith("Payload too large:")
    assert echo.seen == []


async def test_chunked_oversize_body_refused(
    make_proxy: Callable[..., Awaitable[str]], echo_url: str, http: aiohttp.ClientSession
) -> None:
    """A chunked body that grows past the limit is cut off and answered 413."""
    url = await make_proxy(echo_url, max_body_bytes=4096)

    async def gen() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 1024

    async with http.post(f"{url}/api/v1/media/files", data=gen()) as resp:
        assert resp.status == 413
        assert envelope(await resp.read())["code"] == 413


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def test_upstream_down_gives_502(
    make_proxy: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    """An unreachable upstream is a 502 in the envelope with a plain message."""
    url = await make_proxy(f"http://127.0.0.1:{_closed_port()}")
    async with http.get(f"{url}/api/v1/models") as resp:
        assert resp.status == 502
        doc = envelope(await resp.read())
    assert doc["code"] == 502
    assert "could not connect" in doc["message"]


async def test_upstream_slow_gives_504(
    echo: EchoUpstream,
    make_proxy: Callable[..., Awaitable[str]],
    echo_url: str,
    http: aiohttp.ClientSession,
) -> None:
    """An upstream that does not answer within the read timeout is a 504."""
    release = asyncio.Event()

    async def stall(_request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response()

    echo.handlers["/api/v1/models"] = stall
    url = await make_proxy(echo_url, upstream={"read_timeout_seconds": 0.2})
    try:
        async with http.get(f"{url}/api/v1/models") as resp:
            assert resp.status == 504
            assert envelope(await resp.read())["code"] == 504
    finally:
        release.set()


async def test_upstream_reset_gives_502(
    echo: EchoUpstream,
    make_proxy: Callable[..., Awaitable[str]],
    echo_url: str,
    http: aiohttp.ClientSession,
) -> None:
    """An upstream that drops the connection without answering is a 502."""

    async def reset(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        raise asyncio.CancelledError

    echo.handlers["/api/v1/models"] = reset
    url = await make_proxy(echo_url)
    async with http.get(f"{url}/api/v1/models") as resp:
        assert resp.status == 502
        assert envelope(await resp.read())["code"] == 502
