"""URL preflight against a local server, and SSRF attempts that must never connect."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.catalog.preflight import Preflight, PreflightOptions
from proxy.catalog.spec import ImageConstraints
from tests.catalog.imagebytes import jpeg, png

LIMITS = ImageConstraints(status="documented")
BIG = 30 * 1024 * 1024


@dataclass
class Hits:
    paths: list[str] = field(default_factory=list)


def _ranged(
    blob: bytes, request: web.Request, ctype: str, total: int | None = None
) -> web.Response:
    size = total if total is not None else len(blob)
    if request.headers.get("Range", "").startswith("bytes=0-"):
        end = int(request.headers["Range"].split("-")[1])
        part = blob[: end + 1]
        headers = {"Content-Range": f"bytes 0-{len(part) - 1}/{size}"}
        return web.Response(status=206, body=part, content_type=ctype, headers=headers)
    return web.Response(body=blob, content_type=ctype)


def image_app(hits: Hits, private_target: Callable[[], str]) -> web.Application:
    """A tiny image host: good and bad images, redirects and errors."""
    images = {
        "/good.png": (png(1280, 720), "image/png"),
        "/good.jpg": (jpeg(1024, 1024, app_padding=20_000), "image/jpeg"),
        "/padded.jpg": (jpeg(1024, 1024, app_padding=200_000), "image/jpeg"),
        "/small.png": (png(200, 200), "image/png"),
        "/wide.png": (png(3000, 400), "image/png"),
        "/page.html": (b"<html></html>", "text/html"),
        "/fake.png": (b"not an image at all", "image/png"),
    }

    async def handle(request: web.Request) -> web.StreamResponse:
        hits.paths.append(f"{request.method} {request.path}")
        path = request.path
        if path in images:
            blob, ctype = images[path]
            return _ranged(blob, request, ctype)
        if path == "/big.png":
            if request.method == "HEAD":
                raise web.HTTPMethodNotAllowed("HEAD", ["GET"])
            return _ranged(png(1280, 720) + b"\x00" * 70000, request, "image/png", total=BIG)
        if path == "/redirect":
            raise web.HTTPFound("/good.png")
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/to-private":
            raise web.HTTPFound(private_target())
        if path == "/to-metadata":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@dataclass
class Listener:
    """A TCP listener that only counts connections."""

    host: str
    port: int = 0
    connections: int = 0


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    """Counts connections on 127.0.0.2 (loopback, but outside the test allow-list)."""
    spy = Listener("127.0.0.2")

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        spy.connections += 1
        writer.close()

    server = await asyncio.start_server(on_connect, spy.host, 0, family=socket.AF_INET)
    spy.port = server.sockets[0].getsockname()[1]
    yield spy
    server.close()
    await server.wait_closed()


@pytest.fixture
async def site(aiohttp_server: AiohttpServer, listener: Listener) -> tuple[str, Hits]:
    """The image host on 127.0.0.1; its private redirect points at the spy listener."""
    hits = Hits()
    server = await aiohttp_server(
        image_app(hits, lambda: f"http://{listener.host}:{listener.port}/x"), host="127.0.0.1"
    )
    return f"http://127.0.0.1:{server.port}", hits


@pytest.fixture
async def preflight() -> AsyncIterator[Preflight]:
    """A preflight that allows only 127.0.0.1 (the test image host)."""

    async def resolve(host: str) -> list[str]:
        return {"cdn.test": ["127.0.0.1"]}.get(host) or []

    checker = Preflight(PreflightOptions(allow=["127.0.0.1/32"]), resolver=resolve)
    yield checker
    await checker.close()


@pytest.mark.parametrize("path", ["/good.png", "/good.jpg", "/redirect"])
async def test_good_images_pass(site: tuple[str, Hits], preflight: Preflight, path: str) -> None:
    """Readable images within limits pass, directly and through a redirect."""
    base, _ = site
    result = await preflight.check(base + path, LIMITS)
    assert result.ok, result
    assert result.info is not None
    assert result.info.width is not None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing.png", "status"),
        ("/page.html", "wrong_type"),
        ("/fake.png", "wrong_type"),
        ("/small.png", "too_small"),
        ("/wide.png", "bad_aspect"),
        ("/big.png", "too_large"),
        ("/loop", "status"),
    ],
)
async def test_bad_images_are_refused_with_a_reason(
    site: tuple[str, Hits], preflight: Preflight, path: str, reason: str
) -> None:
    """Each failure mode yields its own bounded reason."""
    base, _ = site
    result = await preflight.check(base + path, LIMITS)
    assert (result.ok, result.reason) == (False, reason), result


async def test_jpeg_header_past_the_byte_cap_is_a_warning(
    site: tuple[str, Hits], preflight: Preflight
) -> None:
    """Dimensions beyond the first 64 KiB are not fetched: the image passes with a warning."""
    base, _ = site
    result = await preflight.check(base + "/padded.jpg", LIMITS)
    assert result.ok
    assert result.warnings
    assert result.info is not None
    assert result.info.format == "jpeg"


async def test_head_then_ranged_get_and_cache(site: tuple[str, Hits], preflight: Preflight) -> None:
    """One HEAD and one ranged GET per URL; a second check is served from the cache."""
    base, hits = site
    assert (await preflight.check(base + "/good.png", LIMITS)).ok
    assert (await preflight.check(base + "/good.png", LIMITS)).ok
    assert hits.paths == ["HEAD /good.png", "GET /good.png"]


async def test_name_resolved_through_the_guarded_resolver(
    site: tuple[str, Hits], preflight: Preflight
) -> None:
    """A host name reaches the server only via the guard's vetted answer."""
    base, _ = site
    port = base.rsplit(":", 1)[1]
    assert (await preflight.check(f"http://cdn.test:{port}/good.png", LIMITS)).ok


async def test_unreachable_host(preflight: Preflight) -> None:
    """A name without addresses is unreachable."""
    result = await preflight.check("http://nowhere.test/x.png", LIMITS)
    assert result.reason == "unreachable"


SSRF_URLS = [
    "http://{h}:{p}/",
    "http://127.0.0.1:{p}/",
    "http://localhost:{p}/",
    "http://10.0.0.1:{p}/",
    "http://172.16.0.1:{p}/",
    "http://192.168.1.1:{p}/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:{p}/",
    "http://[::ffff:127.0.0.2]:{p}/",
    "http://2130706434:{p}/",
    "http://0x7f000002:{p}/",
    "http://0177.0.0.2:{p}/",
    "http://127.2:{p}/",
    "http://[fd00:ec2::254]/",
    "http://images.example.com:{p}/",
]


@pytest.mark.parametrize("template", SSRF_URLS)
async def test_ssrf_targets_are_refused_without_connecting(
    listener: Listener, template: str
) -> None:
    """Private, loopback, metadata and disguised addresses are refused before any connection."""

    async def resolve(host: str) -> list[str]:
        return {"images.example.com": [listener.host], "localhost": ["127.0.0.1", "::1"]}[host]

    checker = Preflight(resolver=resolve)
    try:
        result = await checker.check(template.format(h=listener.host, p=listener.port), LIMITS)
    finally:
        await checker.close()
    assert (result.ok, result.reason) == (False, "forbidden_address"), result
    assert listener.connections == 0


@pytest.mark.parametrize("path", ["/to-private", "/to-metadata"])
async def test_redirect_to_private_is_refused_without_connecting(
    site: tuple[str, Hits], preflight: Preflight, listener: Listener, path: str
) -> None:
    """A redirect hop into a private address is re-checked and refused before connecting."""
    base, hits = site
    result = await preflight.check(base + path, LIMITS)
    assert (result.ok, result.reason) == (False, "forbidden_address")
    assert listener.connections == 0
    assert hits.paths == [f"HEAD {path}"]


async def test_listener_counts_real_connections(listener: Listener) -> None:
    """The spy listener does count a real connection (so zero above means none)."""
    _, writer = await asyncio.open_connection(listener.host, listener.port)
    writer.close()
    await writer.wait_closed()
    for _ in range(100):
        if listener.connections:
            break
        await asyncio.sleep(0)
    assert listener.connections == 1
