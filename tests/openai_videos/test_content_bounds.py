"""``GET /v1/videos/{id}/content`` against loopback file hosts that never finish: one that
dribbles bytes (each read well inside the read timeout) and one that sends more than the
proxy relays. The download ends at ``openai_videos.content_max_seconds`` or
``content_max_bytes``: cut short once the answer has begun (the client sees a truncated
body, the file host's connection is dropped), 502 before; each cut logged at warning with
the video id and never the file's URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from harness.waits import wait_until
from proxy.simulator import SimulatorConfig
from tests.e2e.conftest import Stack
from tests.e2e.recording import UPSTREAM_KEY
from tests.openai_videos.test_refusals import HAILUO, refusal, session

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
__all__ = ["session"]

AUTH = {"Authorization": f"Bearer {UPSTREAM_KEY}"}
CUT = "openai_videos.content_cut"


class Dribbler:
    """A file host answering every file with ``count`` writes of ``chunk``, ``pause`` seconds
    apart, under a declared length (``None``: chunked); notes when its client hung up."""

    def __init__(self, chunk: bytes, pause: float, count: int, declared: int | None) -> None:
        self.chunk, self.pause, self.count, self.declared = chunk, pause, count, declared
        self.requests = 0
        self.dropped = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.serve)
        return app

    async def serve(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        if self.declared is not None:
            response.content_length = self.declared
        await response.prepare(request)
        try:
            for _ in range(self.count):
                await response.write(self.chunk)
                await asyncio.sleep(self.pause)  # the host's pace: the fault itself
        except (ConnectionError, asyncio.CancelledError):  # the write refused, or the server
            self.dropped.set()  # cancelled the handler of a connection closed under it
            raise
        return response


async def _video(
    make_stack: Callable[..., Awaitable[Stack]],
    aiohttp_server: ServerFactory,
    http: aiohttp.ClientSession,
    host: Dribbler,
    **bounds: Any,
) -> tuple[str, str]:
    """A completed video whose file ``host`` serves, on a proxy with these content bounds:
    its ``/content`` URL and the file host's origin."""
    stack = await make_stack(
        SimulatorConfig.fast(concurrency_limit=0, api_keys={UPSTREAM_KEY: "default"}),
        upstream={"api_key": UPSTREAM_KEY},
        openai_videos=bounds,
    )
    origin = str((await aiohttp_server(host.app())).make_url("")).rstrip("/")
    stack.sim.config = stack.sim.config.model_copy(update={"file_origin": origin})
    url = f"{stack.proxy_url}/v1/videos"
    async with http.post(url, json=HAILUO, headers=AUTH) as resp:
        video = f"{url}/{(await resp.json())['id']}"

    async def done() -> bool:
        async with http.get(video, headers=AUTH) as resp:
            return bool((await resp.json())["status"] == "completed")

    await wait_until(done, within=20, what="the completed video")
    return f"{video}/content", origin


async def _drain(resp: aiohttp.ClientResponse, sizes: list[int]) -> None:
    """Read the body to its end (30 s at most), noting the size of each piece in ``sizes``."""
    async with asyncio.timeout(30):
        async for chunk in resp.content.iter_any():
            sizes.append(len(chunk))


def _cuts(logs: list[MutableMapping[str, Any]], origin: str) -> list[MutableMapping[str, Any]]:
    """The cut events logged; none of them names the file host (nor any event at all)."""
    assert not [e for e in logs if origin.split("//")[1] in repr(e)], logs
    return [e for e in logs if e["event"] == CUT]


async def test_a_dribbling_file_host_is_cut_at_the_time_bound(
    make_stack: Callable[..., Awaitable[Stack]],
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    """100 bytes every 50 ms under a declared megabyte (100 s to finish): with a 1 s bound the
    client gets 200 and a body cut short within seconds, the file host is hung up on, and
    the cut is logged at warning naming the video."""
    host = Dribbler(b"v" * 100, 0.05, 2000, declared=1_000_000)
    content, origin = await _video(make_stack, aiohttp_server, session, host, content_max_seconds=1)
    started = time.monotonic()
    with capture_logs() as logs:
        async with session.get(content, headers=AUTH) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Length"] == "1000000"
            with pytest.raises(aiohttp.ClientPayloadError):
                await _drain(resp, [])
        await asyncio.wait_for(host.dropped.wait(), 30)
    assert time.monotonic() - started < 30
    (cut,) = _cuts(logs, origin)
    video_id = content.split("/")[-2]
    assert (cut["log_level"], cut["video_id"], cut["reason"]) == (
        "warning",
        video_id,
        "max_seconds",
    )
    assert 0 < cut["bytes_sent"] < 1_000_000


async def test_a_file_past_the_byte_bound_is_cut_or_refused(
    make_stack: Callable[..., Awaitable[Stack]],
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
) -> None:
    """A chunked file of 4 MB with a 256 KB bound reaches the client cut short at 256 KB at
    most; one that declares 4 MB is 502 before any byte, its cut logged too."""
    bound = 256 * 1024
    chunked = Dribbler(b"v" * 65536, 0, 64, declared=None)
    content, origin = await _video(
        make_stack, aiohttp_server, session, chunked, content_max_bytes=bound
    )
    chunks: list[int] = []
    with capture_logs() as logs:
        async with session.get(content, headers=AUTH) as resp:
            assert resp.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await _drain(resp, chunks)
    received = sum(chunks)
    assert 0 < received <= bound
    (cut,) = _cuts(logs, origin)
    assert (cut["log_level"], cut["reason"], cut["bytes_sent"]) == (
        "warning",
        "max_bytes",
        received,
    )

    declared = Dribbler(b"v" * 65536, 0, 64, declared=64 * 65536)
    content, origin = await _video(
        make_stack, aiohttp_server, session, declared, content_max_bytes=bound
    )
    with capture_logs() as logs:
        async with session.get(content, headers=AUTH) as resp:
            error = refusal(resp.status, await resp.json(), 502)
    assert error["code"] == "upstream_unavailable"
    assert "content_max_bytes" in error["message"]
    assert origin.split("//")[1] not in error["message"]
    assert [c["reason"] for c in _cuts(logs, origin)] == ["max_bytes"]
