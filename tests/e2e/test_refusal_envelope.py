"""Every refusal is in the upstream's JSON envelope, aiohttp's own answers included."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import settings_for
from harness.ports import free_ports
from proxy.app import create_app

ServerFactory = Callable[..., Awaitable[TestServer]]
KEY = {"Authorization": "Bearer sk-envelope-client-123456"}


@pytest.fixture
async def proxy(aiohttp_server: ServerFactory) -> TestServer:
    closed = free_ports(1)[0]  # nothing upstream: these refusals never get that far
    return await aiohttp_server(create_app(settings_for(f"http://127.0.0.1:{closed}")))


@pytest.mark.parametrize(
    ("method", "path", "status", "error_type"),
    [
        ("GET", "/", 404, "not_found"),
        ("GET", "/v2/videos", 404, "not_found"),  # /v1/ is OpenAI's door: its own envelope
        ("POST", "/healthz", 405, "method_not_allowed"),
        ("DELETE", "/readyz", 405, "method_not_allowed"),
    ],
)
async def test_paths_and_methods_outside_the_routes(
    proxy: TestServer, method: str, path: str, status: int, error_type: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, str(proxy.make_url(path))) as resp,
    ):
        assert resp.status == status
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body["code"] == status
    assert body["error_type"] == error_type
    assert body["request_id"] == resp.headers["X-Request-Id"]
    assert ":" in body["message"]
    if status == 405:
        assert "GET" in resp.headers["Allow"]


async def test_a_body_over_the_limit(aiohttp_server: ServerFactory) -> None:
    closed = free_ports(1)[0]
    app = create_app(settings_for(f"http://127.0.0.1:{closed}", max_body_bytes=1024))
    server = await aiohttp_server(app)
    async with (
        aiohttp.ClientSession(headers=KEY) as http,
        http.post(
            str(server.make_url("/api/v1/minimax/hailuo-02-t2v")),
            data=b'{"prompt": "' + b"x" * 4096 + b'"}',
            headers={"Content-Type": "application/json"},
        ) as resp,
    ):
        body = await resp.json(content_type=None)
    assert resp.status == 413
    assert body["code"] == 413
    assert body["error_type"] == "payload_too_large"


async def test_an_expectation_the_proxy_cannot_meet(proxy: TestServer) -> None:
    """417 is answered before any middleware: still the envelope, with a request id."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(
            b"POST /api/v1/minimax/hailuo-02-t2v HTTP/1.1\r\nHost: x\r\n"
            b"Expect: 200-ok\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        async with asyncio.timeout(10):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, raw = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 417")
    assert b"application/json" in head
    body = json.loads(raw)
    assert body["code"] == 417
    assert body["error_type"] == "expectation_failed"
    assert body["request_id"]
