"""Polls: identical concurrent polls share one upstream request; errors stay faithful."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from harness.waits import wait_until
from tests.support import EchoUpstream

AUTH = {"Authorization": "Bearer sk-poll-test"}
PENDING = {"code": 0, "message": "success", "data": {"status": "pending", "task_id": "t-1"}}


async def test_identical_concurrent_polls_share_one_upstream_request(
    echo: EchoUpstream, proxy_url: str, http: aiohttp.ClientSession
) -> None:
    """Ten concurrent polls of one task by one caller cost one upstream request."""
    release = asyncio.Event()

    async def slow(_request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response(PENDING)

    echo.handlers["/api/v1/tasks/"] = slow

    async def poll(headers: dict[str, str]) -> int:
        async with http.get(f"{proxy_url}/api/v1/tasks/t-1", headers=headers) as resp:
            assert (await resp.json())["data"]["status"] == "pending"
            return resp.status

    polls = [asyncio.ensure_future(poll(AUTH)) for _ in range(10)]
    other_caller = asyncio.ensure_future(poll({"Authorization": "Bearer sk-someone-else"}))
    await wait_until(lambda: len(echo.seen) == 2)
    release.set()
    assert await asyncio.gather(*polls, other_caller) == [200] * 11
    assert len(echo.seen) == 2  # one for the ten, one for the other caller


async def test_poll_retries_transient_errors(
    echo: EchoUpstream,
    make_proxy: Callable[..., Awaitable[str]],
    echo_url: str,
    http: aiohttp.ClientSession,
) -> None:
    """A 503 on a poll is retried (polls are free); the client sees the good answer."""
    answers = iter(
        [
            web.json_response({"code": 503, "message": "Service unavailable"}, status=503),
            web.json_response(PENDING),
        ]
    )

    async def flaky(_request: web.Request) -> web.StreamResponse:
        return next(answers)

    echo.handlers["/api/v1/tasks/"] = flaky
    url = await make_proxy(echo_url)
    async with http.get(f"{url}/api/v1/tasks/t-1", headers=AUTH) as resp:
        assert resp.status == 200
    assert len(echo.seen) == 2


async def test_unknown_task_404_passes_unchanged(
    echo: EchoUpstream, proxy_url: str, http: aiohttp.ClientSession
) -> None:
    """The upstream's 404 for an unknown or expired task reaches the client byte for byte."""
    raw = b'{"code":404,"message":"Task not found: t-2"}'

    async def missing(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, body=raw, content_type="application/json")

    echo.handlers["/api/v1/tasks/"] = missing
    async with http.get(f"{proxy_url}/api/v1/tasks/t-2", headers=AUTH) as resp:
        assert resp.status == 404
        assert await resp.read() == raw
