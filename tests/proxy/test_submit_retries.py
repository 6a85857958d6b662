"""Submit retries against a scripted upstream: what is resent, what is waited for, what is not."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from tests.support import EchoUpstream, Seen, envelope

BODY = {"prompt": "a lighthouse at dusk", "duration": 6, "resolution": "768P"}
PATH = "/api/v1/minimax/hailuo-02-t2v"
AUTH = {"Authorization": "Bearer sk-retry-test"}


def accepted(task_id: str) -> web.Response:
    return web.json_response(
        {
            "code": 0,
            "message": "success",
            "data": {
                "status": "pending",
                "task_id": task_id,
                "model_id": "m",
                "get_result": {
                    "method": "GET",
                    "url": f"https://api.modellix.ai/api/v1/tasks/{task_id}",
                },
            },
        }
    )


def submits(echo: EchoUpstream) -> list[Seen]:
    """The submits that reached the upstream (the price resolver may also read the model list)."""
    return [seen for seen in echo.seen if seen.method == "POST"]


def script(
    *answers: Callable[[], web.Response],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    calls = iter(answers)

    async def handler(_request: web.Request) -> web.StreamResponse:
        return next(calls)()

    return handler


async def test_rate_limit_reset_is_waited_for_then_retried(
    echo: EchoUpstream,
    echo_url: str,
    make_proxy: Callable[..., Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    """A 429 whose X-RateLimit-Reset is near is waited out, then the submit is sent again."""
    echo.handlers["/api/v1/minimax"] = script(
        lambda: web.json_response(
            {"code": 429, "message": "Rate limit exceeded: slow down"},
            status=429,
            headers={"X-RateLimit-Reset": f"{time.time() + 0.3:.3f}"},
        ),
        lambda: accepted("task-1"),
    )
    url = await make_proxy(echo_url)
    started = time.monotonic()
    async with http.post(f"{url}{PATH}", json=BODY, headers=AUTH) as resp:
        assert resp.status == 200
    assert time.monotonic() - started >= 0.25
    assert len(submits(echo)) == 2


async def test_far_rate_limit_reset_is_passed_on(
    echo: EchoUpstream,
    echo_url: str,
    make_proxy: Callable[..., Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    """A 429 that resets past the retry budget reaches the client unchanged, after one attempt."""
    raw = b'{"code":429,"message":"Rate limit exceeded: concurrent limit"}'
    echo.handlers["/api/v1/minimax"] = script(
        lambda: web.Response(
            status=429,
            body=raw,
            content_type="application/json",
            headers={"X-RateLimit-Reset": str(int(time.time()) + 600)},
        ),
    )
    url = await make_proxy(echo_url)
    async with http.post(f"{url}{PATH}", json=BODY, headers=AUTH) as resp:
        assert resp.status == 429
        assert await resp.read() == raw
        assert "X-RateLimit-Reset" in resp.headers
    assert len(submits(echo)) == 1


async def test_permanent_refusal_is_not_retried(
    echo: EchoUpstream,
    echo_url: str,
    make_proxy: Callable[..., Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    """A 402 from the upstream is surfaced at once and never resent."""
    echo.handlers["/api/v1/minimax"] = script(
        lambda: web.json_response(
            {"code": 402, "message": "Insufficient balance: top up"}, status=402
        ),
    )
    url = await make_proxy(echo_url)
    async with http.post(f"{url}{PATH}", json=BODY, headers=AUTH) as resp:
        assert resp.status == 402
        assert envelope(await resp.read())["message"].startswith("Insufficient balance")
    assert len(submits(echo)) == 1


async def test_gateway_timeout_on_submit_is_unknown_not_retried(
    echo: EchoUpstream,
    echo_url: str,
    make_proxy: Callable[..., Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    """An upstream 504 on a paid submit may hide a created task: 504 to the client, no resend."""
    echo.handlers["/api/v1/minimax"] = script(
        lambda: web.json_response({"code": 504, "message": "Gateway timeout"}, status=504),
    )
    url = await make_proxy(echo_url)
    async with http.post(f"{url}{PATH}", json=BODY, headers=AUTH) as resp:
        assert resp.status == 504
        doc = envelope(await resp.read())
    assert "outcome is unknown" in doc["message"]
    assert doc["upstream_status"] == 504
    assert len(submits(echo)) == 1


async def test_unusable_success_body_is_unknown(
    echo: EchoUpstream,
    echo_url: str,
    make_proxy: Callable[..., Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    """A 200 without a usable task id is an unknown outcome, not a success and not a retry."""
    echo.handlers["/api/v1/minimax"] = script(lambda: web.Response(status=200, body=b"<html>oops"))
    url = await make_proxy(echo_url)
    async with http.post(f"{url}{PATH}", json=BODY, headers=AUTH) as resp:
        assert resp.status == 504
        assert "unusable" in envelope(await resp.read())["message"]
    assert len(submits(echo)) == 1


async def test_missing_authorization_refused_locally(
    echo: EchoUpstream, proxy_url: str, http: aiohttp.ClientSession
) -> None:
    """A paid submit without a bearer key is refused 401 without reaching the upstream."""
    async with http.post(f"{proxy_url}{PATH}", json=BODY) as resp:
        assert resp.status == 401
        assert envelope(await resp.read())["message"].startswith("Authentication failed:")
    assert echo.seen == []
