"""A video made through ``/v1/videos`` ends in a webhook of OpenAI's event shape, signed as
the proxy signs every delivery, which the OpenAI SDK's ``webhooks.unwrap`` verifies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from openai import AsyncOpenAI, InvalidWebhookSignatureError, NotFoundError

from harness.ports import free_port
from harness.waits import wait_until
from proxy.simulator import SimulatorConfig
from proxy.stages.identify import fingerprint
from proxy.webhooks import signing
from tests.e2e.admission_support import UPSTREAM_KEY, virtual_key
from tests.e2e.conftest import Stack
from tests.e2e.test_webhooks import MASTER, webhooks

API_KEY = "sk-webhook-videos-key-0001"
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


class RawReceiver:
    """Keeps every delivery as it arrived: the body bytes and the headers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._keep)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _keep(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
async def receiver() -> AsyncIterator[RawReceiver]:
    r = RawReceiver()
    await r.start()
    try:
        yield r
    finally:
        if r.runner is not None:
            await r.runner.cleanup()


async def test_unwrap_verifies_a_video_completed_delivery(
    make_stack: Any, receiver: RawReceiver
) -> None:
    """One ``video.completed`` event naming the video; unwrap accepts it with the caller's
    secret and refuses it with another."""
    stack: Stack = await make_stack(**webhooks())
    async with AsyncOpenAI(
        base_url=f"{stack.proxy_url}/v1", api_key=API_KEY, max_retries=0
    ) as client:
        video = await client.videos.create(
            model="kling-v3",
            prompt="a kite",
            seconds="8",
            size="1280x720",
            extra_headers={"X-Modellix-Callback-Url": receiver.url},
        )
        await wait_until(lambda: bool(receiver.received), within=20, what="the delivery")
        body, headers = receiver.received[0]
        caller = f"fp:{fingerprint(f'Bearer {API_KEY}')}"
        secret = signing.secret_text(signing.caller_key(MASTER, caller))
        event: Any = client.webhooks.unwrap(body, headers, secret=secret)
        assert event.type == "video.completed"
        assert event.data.id == video.id
        assert event.object == "event"
        assert event.id.startswith("evt_")
        other = signing.secret_text(signing.caller_key(MASTER, "fp:someone-else"))
        with pytest.raises(InvalidWebhookSignatureError):
            client.webhooks.unwrap(body, headers, secret=other)


async def test_a_video_expired_in_the_queue_is_delivered_as_video_failed(
    make_stack: Any, receiver: RawReceiver
) -> None:
    """One slot held by a long video; the next waits past the team's maximum and expires in
    the queue: its webhook is ``video.failed`` naming it (the same delivery path, signed with
    the key's secret), it is listed ``failed``, and a delete takes it out of every view."""
    config = SimulatorConfig.fast(
        concurrency_limit=3,
        processing_seconds=(30.0, 30.0),
        api_keys={UPSTREAM_KEY: "default"},
        initial_balance_usd=Decimal(1000),
    )
    stack: Stack = await make_stack(
        config,
        keys={"mode": "virtual", "cache_seconds": 0.1},
        upstream={"api_key": UPSTREAM_KEY},
        admission={"enabled": True, "concurrency": 1, "tick_seconds": 0.05,
                   "teams": {"studio": {"max_wait_seconds": 0.5}}},
        **webhooks(),
    )  # fmt: skip
    store = stack.runtime.store
    assert store is not None
    key_id, token = await virtual_key(store, team="studio")
    hook = {"X-Modellix-Callback-Url": receiver.url}
    async with AsyncOpenAI(
        base_url=f"{stack.proxy_url}/v1", api_key=token, max_retries=0
    ) as client:
        running = await client.videos.create(
            model="kling-v3", prompt="long", seconds="8", extra_headers=hook
        )
        waiting = await client.videos.create(
            model="kling-v3", prompt="waits", seconds="8", extra_headers=hook
        )
        await wait_until(lambda: bool(receiver.received), within=20, what="the delivery")
        body, headers = receiver.received[0]
        secret = signing.secret_text(signing.caller_key(MASTER, f"vk:{key_id}"))
        event: Any = client.webhooks.unwrap(body, headers, secret=secret)
        assert (event.type, event.data.id) == ("video.failed", waiting.id)
        failed = await client.videos.retrieve(waiting.id)
        assert failed.status == "failed"
        assert failed.error is not None
        listed = [(v.id, v.status) async for v in client.videos.list()]
        assert listed[0] == (waiting.id, "failed")
        assert listed[1][0] == running.id
        assert (await client.videos.delete(waiting.id)).deleted
        with pytest.raises(NotFoundError):
            await client.videos.retrieve(waiting.id)
        assert [v.id async for v in client.videos.list()] == [running.id]
    assert stack.sim.counters.tasks_created == 1
