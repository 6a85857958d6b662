"""Hostile input on ``/v1/videos``, over loopback: malformed forms and text that is not UTF-8
are 400 in OpenAI's envelope (never a 500), a multipart form counts every part against the
body limit, and ``/content`` follows a file host's redirect only where the SSRF guard
allows, sending no credential to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from harness.waits import wait_until
from proxy.simulator import SimulatorConfig
from tests.e2e.conftest import Stack
from tests.e2e.recording import UPSTREAM_KEY
from tests.openai_videos.test_refusals import HAILUO, KEY, refusal, session

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
__all__ = ["session"]

BOUNDARY = "hostile-boundary"
AUTH = {"Authorization": KEY}


async def post(
    http: aiohttp.ClientSession, url: str, body: Any, content_type: str
) -> tuple[int, dict[str, Any]]:
    headers = {**AUTH, "Content-Type": content_type}
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def _text_part(name: str, value: bytes) -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
    return head.encode() + value + b"\r\n"


async def test_malformed_bodies_are_400_and_reach_nothing(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    """A lone surrogate in JSON, a multipart form cut short or without a boundary, a form
    that is not UTF-8: each 400 in OpenAI's envelope, and nothing is sent upstream."""
    url = f"{stack.proxy_url}/v1/videos"
    multipart = f"multipart/form-data; boundary={BOUNDARY}"
    cases: list[tuple[str, bytes, str | None]] = [
        ("application/json", b'{"model": "hailuo-2.3", "prompt": "a \\ud800 fox"}', "prompt"),
        ("application/json", b'{"model": "hailuo-2.3", "prompt": "p", "size": "\\udfff"}', "size"),
        (multipart, _text_part("prompt", b"a fox")[:-2], None),  # no closing boundary
        ("multipart/form-data", _text_part("prompt", b"a fox"), None),
        ("application/x-www-form-urlencoded", b"model=hailuo-2.3&prompt=%ff%fe", None),
    ]
    for content_type, body, param in cases:
        status, doc = await post(session, url, body, content_type)
        error = refusal(status, doc, 400)
        assert error["param"] == param, (content_type, body, error)
    assert stack.sim.requests(method="POST") == []


async def test_multipart_text_parts_count_against_the_body_limit(
    make_stack: Callable[..., Awaitable[Stack]], session: aiohttp.ClientSession
) -> None:
    """A chunked form of many text parts (each under the per-field limit, all together over
    the body limit, the last a valid prompt) is 413, and nothing is sent upstream."""
    stack = await make_stack(limits={"submit_body_bytes": 256 * 1024})

    async def parts() -> AsyncIterator[bytes]:
        yield _text_part("model", b"hailuo-2.3")
        for _ in range(8):  # 8 x 60 KB: each part fits its own limit, not the body's
            yield _text_part("prompt", b"x" * 60_000)
        yield _text_part("prompt", b"a fox") + f"--{BOUNDARY}--\r\n".encode()

    multipart = f"multipart/form-data; boundary={BOUNDARY}"
    status, doc = await post(session, f"{stack.proxy_url}/v1/videos", parts(), multipart)
    assert refusal(status, doc, 413)["code"] == "payload_too_large"
    assert stack.sim.requests(method="POST") == []


class FileHost:
    """A result-file host that redirects every file to ``target`` and keeps what it got."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.headers: list[dict[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.redirect)
        return app

    async def redirect(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        raise web.HTTPFound(self.target)


class Inside:
    """What a file host should never get the proxy to reach: counts the requests it serves."""

    def __init__(self) -> None:
        self.hits = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.secret)
        return app

    async def secret(self, _: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(body=b"instance credentials", content_type="video/mp4")


async def _content(
    make_stack: Callable[..., Awaitable[Stack]],
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    target: str,
    **overrides: Any,
) -> tuple[int, dict[str, Any] | bytes, FileHost]:
    """A finished video whose result URL redirects to ``target``: its /content answer."""
    stack = await make_stack(
        SimulatorConfig.fast(concurrency_limit=0, api_keys={UPSTREAM_KEY: "default"}),
        upstream={"api_key": UPSTREAM_KEY},
        **overrides,
    )
    host = FileHost(target)
    origin = str((await aiohttp_server(host.app())).make_url("")).rstrip("/")
    stack.sim.config = stack.sim.config.model_copy(update={"file_origin": origin})
    url = f"{stack.proxy_url}/v1/videos"
    headers = {"Authorization": f"Bearer {UPSTREAM_KEY}"}
    async with session.post(url, json=HAILUO, headers=headers) as resp:
        video = f"{url}/{(await resp.json())['id']}"

    async def done() -> bool:
        async with session.get(video, headers=headers) as resp:
            return bool((await resp.json())["status"] == "completed")

    await wait_until(done, within=20, what="the completed video")
    async with session.get(f"{video}/content", headers=headers) as resp:
        if resp.status == 200:
            return resp.status, await resp.read(), host
        return resp.status, await resp.json(), host


async def test_content_follows_no_redirect_the_guard_refuses(
    make_stack: Callable[..., Awaitable[Stack]],
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    """A file host redirecting to a loopback service or to the metadata address: 502 naming
    the address, the service never reached; no credential is sent to the file host."""
    inside = Inside()
    inside_url = str((await aiohttp_server(inside.app())).make_url("/latest/meta-data"))
    for target in (inside_url, "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"):
        status, doc, host = await _content(make_stack, aiohttp_server, session, target)
        assert isinstance(doc, dict)
        error = refusal(status, doc, 502)
        assert error["code"] == "upstream_unavailable"
        assert "redirected" in error["message"], error
        assert len(host.headers) == 1
        sent = " ".join(f"{k}: {v}" for k, v in host.headers[0].items())
        assert "Authorization" not in host.headers[0]
        assert UPSTREAM_KEY not in sent
    assert inside.hits == 0


async def test_content_follows_a_redirect_the_guard_allows(
    make_stack: Callable[..., Awaitable[Stack]],
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    """With loopback in ``models.preflight.allow_hosts``, the same redirect is followed and
    the bytes it leads to are the content."""
    inside = Inside()
    inside_url = str((await aiohttp_server(inside.app())).make_url("/files/v.mp4"))
    status, body, _ = await _content(
        make_stack, aiohttp_server, session, inside_url,
        models={"preflight": {"allow_hosts": ["127.0.0.0/8"]}},
    )  # fmt: skip
    assert (status, body, inside.hits) == (200, b"instance credentials", 1)


async def test_a_remix_prompt_with_a_lone_surrogate_is_400(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    """Remixing a completed video with a prompt holding a lone surrogate: 400 naming the
    prompt, and no second submit reaches the upstream."""
    url = f"{stack.proxy_url}/v1/videos"
    async with session.post(url, json={**HAILUO, "model": "seedance-2.0"}, headers=AUTH) as resp:
        video = f"{url}/{(await resp.json())['id']}"

    async def done() -> bool:
        async with session.get(video, headers=AUTH) as resp:
            return bool((await resp.json())["status"] == "completed")

    await wait_until(done, within=20, what="the completed video")
    status, doc = await post(
        session, f"{video}/remix", b'{"prompt": "\\ud800"}', "application/json"
    )
    assert refusal(status, doc, 400)["param"] == "prompt"
    assert len(stack.sim.requests(method="POST")) == 1
