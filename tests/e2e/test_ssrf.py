"""SSRF through the running proxy: image URLs that point inside are refused without a connection.

Spy listeners on loopback count every TCP connection they receive; a refused URL must leave
them at zero and leave the simulator without a submit. The literal-address cases, the
redirect case and the allow-listed image server go through the proxy exactly as built by
``create_app``. ``create_app`` has no way to inject a DNS resolver, so the "public name that
resolves to a private address" case swaps the running proxy's validate stage (in
``runtime.pipeline``) for one whose preflight uses an injected resolver; everything else on
that request path (identify, pin, idempotency, price, the handler) stays the app's own.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.catalog.media import MediaChecker
from proxy.catalog.preflight import Preflight
from proxy.catalog.validation import BodyValidator
from proxy.stages.validate import ValidateStage
from tests.catalog.imagebytes import png
from tests.e2e.conftest import Stack

MakeStack = Callable[..., Awaitable[Stack]]
I2V = "minimax/hailuo-02-i2v"


@dataclass
class Spy:
    """Counts TCP connections on 127.0.0.1, 127.0.0.2 and ::1 (one port each)."""

    ports: dict[str, int]
    connections: int = 0
    seen: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def spy() -> AsyncIterator[Spy]:
    counter = Spy({})

    async def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counter.connections += 1
        counter.seen.set()
        writer.close()

    servers: list[asyncio.Server] = []
    for host, family in (
        ("127.0.0.1", socket.AF_INET),
        ("127.0.0.2", socket.AF_INET),
        ("::1", socket.AF_INET6),
    ):
        server = await asyncio.start_server(on_connect, host, 0, family=family)
        servers.append(server)
        counter.ports[host] = server.sockets[0].getsockname()[1]
    yield counter
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_spy_counts_real_connections(spy: Spy) -> None:
    """The spy does count a real connection on each address (so zero elsewhere means none)."""
    for host, port in spy.ports.items():
        spy.seen.clear()
        _, writer = await asyncio.open_connection(host, port)
        async with asyncio.timeout(5):
            await spy.seen.wait()
        writer.close()
        await writer.wait_closed()
    assert spy.connections == 3


async def submit_image(
    http: aiohttp.ClientSession, stack: Stack, url: str
) -> tuple[int, dict[str, Any]]:
    body = {"first_frame_image": url, "prompt": "a fox", "duration": 6}
    async with http.post(f"{stack.proxy_url}/api/v1/{I2V}", json=body) as resp:
        doc: dict[str, Any] = await resp.json(content_type=None)
        return resp.status, doc


def assert_forbidden(status: int, doc: dict[str, Any], url: str) -> None:
    assert status == 400, (url, doc)
    assert doc["error_type"] == "forbidden_address", (url, doc)
    assert doc["message"].startswith("Invalid parameters: parameter 'first_frame_image'"), url
    assert doc["errors"][0]["field"] == "first_frame_image"
    assert "forbidden_address" in doc["errors"][0]["problem"]


def ssrf_urls(spy: Spy) -> list[str]:
    p1, p6 = spy.ports["127.0.0.1"], spy.ports["::1"]
    return [
        f"http://127.0.0.1:{p1}/x.png",
        f"http://localhost:{p1}/x.png",
        "http://10.0.0.1/x.png",
        "http://172.16.0.1/x.png",
        "http://172.31.255.254/x.png",
        "http://192.168.1.1/x.png",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::1]:{p6}/x.png",
        f"http://[::ffff:127.0.0.1]:{p1}/x.png",
        f"http://2130706433:{p1}/x.png",
        f"http://0x7f000001:{p1}/x.png",
        f"http://0177.0.0.1:{p1}/x.png",
        f"http://127.1:{p1}/x.png",
        f"https://127.0.0.1:{p1}/x.png",
    ]


async def test_private_and_disguised_addresses_are_refused_without_connecting(
    stack: Stack, http: aiohttp.ClientSession, spy: Spy
) -> None:
    """Loopback, private, metadata and encoded forms are refused 400 before any connection."""
    for url in ssrf_urls(spy):
        status, doc = await submit_image(http, stack, url)
        assert_forbidden(status, doc, url)
    assert spy.connections == 0
    assert stack.sim.counters.submits_received == 0


async def test_public_name_resolving_to_a_private_address_is_refused(
    stack: Stack, http: aiohttp.ClientSession, spy: Spy
) -> None:
    """A public-looking host whose DNS answer is loopback is refused and never connected to."""

    async def resolve(host: str) -> list[str]:
        answers = {"images.example.com": ["127.0.0.1"], "mixed.example.com": ["8.8.8.8", "::1"]}
        return answers[host]

    preflight = Preflight(resolver=resolve)
    catalog = stack.runtime.catalog
    guarded = ValidateStage(catalog, BodyValidator(catalog), MediaChecker(preflight))
    pipeline = stack.runtime.pipeline
    stack.runtime.pipeline = pipeline.replacing(guarded)
    try:
        for host in ("images.example.com", "mixed.example.com"):
            url = f"http://{host}:{spy.ports['127.0.0.1']}/x.png"
            status, doc = await submit_image(http, stack, url)
            assert_forbidden(status, doc, url)
    finally:
        stack.runtime.pipeline = pipeline
        await preflight.close()
    assert spy.connections == 0
    assert stack.sim.counters.submits_received == 0


def image_host(spy: Spy) -> web.Application:
    """An image server: a real PNG, a too-small PNG, and redirects into private space."""
    images = {"/good.png": png(1280, 720), "/small.png": png(200, 200)}

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path in images:
            return web.Response(body=images[request.path], content_type="image/png")
        if request.path == "/to-private":
            raise web.HTTPFound(f"http://127.0.0.2:{spy.ports['127.0.0.2']}/x.png")
        if request.path == "/to-metadata":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
async def allowed(
    make_stack: MakeStack, aiohttp_server: AiohttpServer, spy: Spy
) -> tuple[Stack, str]:
    """A stack whose preflight allow-lists 127.0.0.1/32, and an image host on 127.0.0.1."""
    server = await aiohttp_server(image_host(spy), host="127.0.0.1")
    stack = await make_stack(models={"preflight": {"allow_hosts": ["127.0.0.1/32"]}})
    return stack, f"http://127.0.0.1:{server.port}"


async def test_redirect_into_private_space_is_refused_without_connecting(
    allowed: tuple[Stack, str], http: aiohttp.ClientSession, spy: Spy
) -> None:
    """An allowed host redirecting to a private address is refused at the hop, never connected."""
    stack, base = allowed
    for path in ("/to-private", "/to-metadata"):
        status, doc = await submit_image(http, stack, base + path)
        assert_forbidden(status, doc, base + path)
    assert spy.connections == 0
    assert stack.sim.counters.submits_received == 0


async def test_allow_listed_image_server_with_a_real_png_passes(
    allowed: tuple[Stack, str], http: aiohttp.ClientSession
) -> None:
    """An allow-listed loopback server serving a real 1280x720 PNG passes; the body is forwarded."""
    stack, base = allowed
    status, doc = await submit_image(http, stack, base + "/good.png")
    assert status == 200, doc
    assert stack.sim.counters.tasks_created == 1
    task = next(iter(stack.sim.tasks.values()))
    assert task.body["first_frame_image"] == base + "/good.png"


async def test_allow_listed_server_with_a_too_small_image_is_refused_with_the_reason(
    allowed: tuple[Stack, str], http: aiohttp.ClientSession
) -> None:
    """A 200x200 PNG is under the 300 px short side: 400 'Value out of range' naming too_small."""
    stack, base = allowed
    status, doc = await submit_image(http, stack, base + "/small.png")
    assert status == 400, doc
    assert doc["message"].startswith("Value out of range: parameter 'first_frame_image'")
    assert doc["error_type"] == "media_dimensions"
    assert "too_small" in doc["errors"][0]["problem"]
    assert stack.sim.counters.submits_received == 0
