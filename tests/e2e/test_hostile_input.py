"""Hostile input through a live proxy in front of the simulator: a clear 4xx, never a 5xx.

Each case was a measured 500 (or an unbounded stall) before: hostile numbers in a priced
field, header bytes that are not UTF-8, malformed image URLs, bodies built to cost
parsing time. Raw sockets send what aiohttp's client refuses to. Nothing refused here may
reach the upstream.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from tests.catalog.imagebytes import GOOD_IMAGE
from tests.e2e.conftest import Stack

MakeStack = Callable[..., Awaitable[Stack]]
HAILUO_T2V = "minimax/hailuo-02-t2v"
HAILUO_I2V = "minimax/hailuo-02-i2v"
KLING_T2V = "kling/kling-v3-t2v"


async def raw_exchange(url: str, request: bytes, within: float = 10.0) -> tuple[int, bytes]:
    """Send ``request`` as is over a new connection; the status and body of the answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(within):
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
    finally:
        writer.close()
    return int(head.split(b" ", 2)[1]), body


def submit_request(path: str, headers: list[bytes], body: bytes) -> bytes:
    lines = [f"POST /api/v1/{path} HTTP/1.1".encode(), b"Host: 127.0.0.1", *headers]
    lines += [f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def post(
    http: aiohttp.ClientSession, stack: Stack, slug: str, body: bytes
) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json"}
    data = io.BytesIO(body)  # streamed: aiohttp warns about large raw bytes bodies
    async with http.post(f"{stack.proxy_url}/api/v1/{slug}", data=data, headers=headers) as r:
        return r.status, await r.json(content_type=None)


@pytest.mark.parametrize("slug", [HAILUO_T2V, KLING_T2V])
@pytest.mark.parametrize("duration", ["-6", "1e29", "1e999", "-1e999", str(10**400)])
async def test_hostile_duration_is_a_400_not_a_500(
    stack: Stack, http: aiohttp.ClientSession, slug: str, duration: str
) -> None:
    """A negative, huge or infinite duration is refused 400 in the envelope, never priced."""
    body = f'{{"prompt": "a cat", "duration": {duration}}}'.encode()
    status, doc = await post(http, stack, slug, body)
    assert status == 400, doc
    assert str(doc["message"]).split(":")[0] in {"Invalid format", "Value out of range"}
    assert stack.sim.counters.submits_received == 0


@pytest.mark.parametrize(
    ("header", "named"),
    [
        (b"Authorization: Bearer sk-\xff\xfe-not-utf8", "Authorization"),
        (b"Authorization: Bearer sk-\xc3\xa9t\xc3\xa9", "Authorization"),
        (b"Authorization: Bearer sk-ok-123456\r\nX-Modellix-Team: t\xe9\xff", "X-Modellix-Team"),
        (
            b"Authorization: Bearer sk-ok-123456\r\nX-Modellix-Project: \xc0\x80",
            "X-Modellix-Project",
        ),
    ],
)
async def test_header_bytes_that_are_not_utf8_are_refused(
    stack: Stack, header: bytes, named: str
) -> None:
    """aiohttp hands non-UTF-8 header bytes on as lone surrogates: 401/400 naming the header."""
    body = b'{"prompt": "a cat"}'
    status, raw = await raw_exchange(stack.proxy_url, submit_request(HAILUO_T2V, [header], body))
    doc = json.loads(raw)
    expected = 401 if named == "Authorization" else 400
    assert (status, doc["code"]) == (expected, expected), doc
    assert named in doc["message"]
    assert stack.sim.counters.submits_received == 0


MALFORMED_URLS = [
    "http://[::1",
    "http://images.example.com:99999/x.png",
    "http://a:b@",
    "http://a:b@/x.png",
    "http://" + "a" * 300 + ".example.com/x.png",
    "http://" + ("a" * 60 + ".") * 5 + "com/x.png",
    "http://a..b/x.png",
    "http://\u00e9\u0301x.\u3002/x.png",
    "http://exa mple.com/x.png",
    "http://example.com:0/x.png",
    "https://" + "x" * 9000,
]


@pytest.mark.parametrize("url", MALFORMED_URLS)
async def test_malformed_image_url_is_an_invalid_format_refusal(
    stack: Stack, http: aiohttp.ClientSession, url: str
) -> None:
    """An image URL that cannot be parsed or connected to is 400 'Invalid format' naming it."""
    body = json.dumps({"prompt": "a cat", "first_frame_image": url}).encode()
    status, doc = await post(http, stack, HAILUO_I2V, body)
    assert status == 400, doc
    assert str(doc["message"]).startswith("Invalid format: parameter 'first_frame_image'"), doc
    assert stack.sim.counters.submits_received == 0


async def test_pipeline_order_is_identify_then_body_then_the_rest(stack: Stack) -> None:
    """The running proxy identifies the caller before it reads the body, and every step of a
    submit, tail included, runs in this one fixed order."""
    assert stack.runtime.pipeline.names == (
        "identify",
        "read_body",
        "pin",
        "fingerprint",
        "idempotency",
        "validate",
        "price",
        "callback",
        "budget",
        "admit",
        "send",
        "record",
    )


async def test_unauthenticated_submit_is_refused_before_its_body_is_read(stack: Stack) -> None:
    """A submit without a key gets 401 at once, though its announced 10 MB body never comes."""
    request = (
        f"POST /api/v1/{HAILUO_T2V} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"
    ).encode()
    started = time.monotonic()
    status, raw = await raw_exchange(stack.proxy_url, request, within=5)
    assert status == 401, raw
    assert time.monotonic() - started < 5
    assert json.loads(raw)["message"].startswith("Authentication failed:")


async def test_virtual_mode_checks_the_key_before_the_body(make_stack: MakeStack) -> None:
    """With virtual keys only, an unknown key is refused before the body is read."""
    stack = await make_stack(keys={"mode": "virtual"})
    request = (
        f"POST /api/v1/{HAILUO_T2V} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Authorization: Bearer sk-not-a-proxy-key\r\nContent-Length: 10000000\r\n\r\n{"
    ).encode()
    status, raw = await raw_exchange(stack.proxy_url, request, within=5)
    assert status == 401, raw


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (json.dumps({f"k{i}": i for i in range(100_000)}).encode(), 413, "json_too_complex"),
        (b'{"prompt": "x", "a": ' + b"[" * 40 + b"]" * 40 + b"}", 400, "json_too_complex"),
        (json.dumps({"prompt": "x", "k" * 300: 1}).encode(), 400, "json_too_complex"),
        (json.dumps({"prompt": "x", "list": list(range(2_500))}).encode(), 400, "json_too_complex"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "malformed_json"),
    ],
    ids=["100k-keys", "deep", "long-key", "many-items", "very-deep"],
)
async def test_bodies_built_to_cost_parsing_time_are_refused_early(
    stack: Stack, http: aiohttp.ClientSession, body: bytes, status: int, reason: str
) -> None:
    """Too many separators (413), too deep, too wide or long-keyed (400): refused, not parsed."""
    got, doc = await post(http, stack, HAILUO_T2V, body)
    assert (got, doc["error_type"]) == (status, reason), doc
    assert stack.sim.counters.submits_received == 0


async def test_submit_body_cap_is_its_own_setting(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """``limits.submit_body_bytes`` caps a submit body (413) below ``max_body_bytes``."""
    stack = await make_stack(limits={"submit_body_bytes": 64 * 1024})
    body = json.dumps({"prompt": "a cat", "first_frame_image": GOOD_IMAGE + "A" * 70_000})
    status, doc = await post(http, stack, HAILUO_I2V, body.encode())
    assert (status, doc["error_type"]) == (413, "payload_too_large"), doc
    assert stack.sim.counters.submits_received == 0


async def test_large_valid_body_still_goes_through(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """A body over the off-loop threshold is parsed and hashed off the loop, then forwarded."""
    stack = await make_stack(limits={"off_loop_bytes": 1024}, models={"preflight": {"mode": "off"}})
    body = json.dumps({"prompt": "a cat " * 300, "first_frame_image": GOOD_IMAGE})
    status, doc = await post(http, stack, HAILUO_I2V, body.encode())
    assert status == 200, doc
    assert stack.sim.counters.submits_received == 1
