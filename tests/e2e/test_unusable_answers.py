"""Unusable upstream answers: a non-JSON poll 200 is retried; an unsent submit says so."""

from __future__ import annotations

import aiohttp

from harness.config import settings_for
from harness.ports import free_ports
from proxy.app import create_app
from tests.e2e.conftest import ServerFactory, Stack

HAILUO = {"prompt": "a red fox running through snow", "duration": 6, "resolution": "768P"}
SUBMIT = "/api/v1/minimax/hailuo-02-t2v"


async def test_a_poll_answered_with_a_non_json_200_is_retried(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """The client gets the task's JSON; the garbled 200 was retried like a 503."""
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=HAILUO) as resp:
        assert resp.status == 200
        task_id = (await resp.json())["data"]["task_id"]
    stack.sim.inject("malformed", count=1, route="poll")
    async with http.get(f"{stack.proxy_url}/api/v1/tasks/{task_id}") as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["data"]["task_id"] == task_id
    retried = stack.metrics.registry.get_sample_value(
        "modellix_proxy_upstream_retries_total", {"operation": "poll", "reason": "invalid_body"}
    )
    assert retried == 1.0


async def test_a_submit_that_never_left_is_a_rejection_the_official_cli_shows(
    aiohttp_server: ServerFactory,
) -> None:
    """Nothing listens upstream: 429 with Retry-After and a message saying nothing was sent."""
    closed = free_ports(1)[0]
    app = create_app(settings_for(f"http://127.0.0.1:{closed}"))
    server = await aiohttp_server(app)
    headers = {"Authorization": "Bearer sk-e2e-secret-key-123456"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(str(server.make_url(SUBMIT)), json=HAILUO) as resp,
    ):
        body = await resp.json()
        assert resp.status == 429  # in the CLI's "definitely rejected" set, unlike 5xx
        assert resp.headers["Retry-After"] == "5"
    assert body["code"] == 429
    assert body["message"].startswith("Upstream unreachable: ")
    assert "not sent" in body["message"]
    assert "nothing was charged" in body["message"]
