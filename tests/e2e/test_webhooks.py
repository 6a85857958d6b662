"""Completion webhooks end to end: proxy, simulator and a receiver on loopback sockets."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from harness.ports import free_port
from harness.waits import wait_until
from proxy.admin import create_admin_app
from proxy.config import Settings
from proxy.stores.webhook_records import DeliveryState
from proxy.webhooks import signing
from tests.e2e.conftest import ServerFactory, Stack
from tests.e2e.test_client_flow import HAILUO
from tests.e2e.test_watcher import FAST_WATCHER

MASTER = "test-master-secret"
HEADER = "X-Modellix-Callback-Url"
ADMIN = Settings.model_validate({"admin": {"token": "admin-token"}})


def webhooks(**extra: Any) -> dict[str, Any]:
    settings = {
        "enabled": True,
        "signing_secret": MASTER,
        "allow_hosts": ["127.0.0.1"],
        "base_delay_seconds": 0.1,
        "max_delay_seconds": 0.3,
        "jitter": 0.0,
        "tick_seconds": 0.05,
        "timeout_seconds": 2.0,
        **extra,
    }
    return {**FAST_WATCHER, "webhooks": settings}


@dataclass
class Receiver:
    """A webhook receiver that verifies every delivery and answers what the test says."""

    port: int
    answer: int = 204
    verified: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    forged: int = 0
    runner: web.AppRunner | None = None
    secrets: dict[str, str] = field(default_factory=dict)  # caller -> whsec_ secret

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._verify)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _verify(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: request.headers.get(k, "") for k in signing.headers(b"", "", 0, b"")}
        ok = any(
            signing.verify(secret, headers, body, time.time()) for secret in self.secrets.values()
        )
        if not ok:
            self.forged += 1
            return web.Response(status=400)
        if self.answer < 300:
            self.verified.append((headers["Webhook-Id"], json.loads(body)))
        return web.Response(status=self.answer)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(free_port())
    try:
        yield r
    finally:
        await r.stop()


async def submit(http: aiohttp.ClientSession, stack: Stack, prompt: str, url: str | None) -> Any:
    headers = {HEADER: url} if url else {}
    body = {**HAILUO, "prompt": prompt}
    async with http.post(
        f"{stack.proxy_url}/api/v1/minimax/hailuo", json=body, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def test_each_terminal_job_is_delivered_once_signed_across_a_receiver_outage(
    make_stack: Any, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """With the receiver down, deliveries fail and are retried; once up, one verified each."""
    stack: Stack = await make_stack(**webhooks(max_attempts=50))  # never dead-lettered here
    store = stack.runtime.store
    assert store is not None
    ids = []
    for i in range(4):
        prompt = f"hooked {i}" + (" [sim:task_failed]" if i == 3 else "")
        status, doc = await submit(http, stack, prompt, receiver.url)
        assert status == 200, doc
        ids.append(doc["data"]["task_id"])
    status, doc = await submit(http, stack, "no hook", None)
    assert status == 200
    unhooked = doc["data"]["task_id"]

    async def all_failed_once() -> bool:
        found = [await store.get_delivery(t) for t in ids]
        return all(d is not None and d.attempts >= 1 for d in found)

    await wait_until(all_failed_once)  # the receiver is down: connection refused, retried later
    job = await store.get_job(ids[0])
    assert job is not None
    receiver.secrets[job.caller] = signing.secret_text(signing.caller_key(MASTER, job.caller))
    await receiver.start()

    async def all_delivered() -> bool:
        found = [await store.get_delivery(t) for t in ids]
        return all(d is not None and d.state is DeliveryState.DELIVERED for d in found)

    await wait_until(all_delivered)
    assert receiver.forged == 0
    by_task = {doc["data"]["task_id"]: (msg_id, doc) for msg_id, doc in receiver.verified}
    assert sorted(by_task) == sorted(ids)
    assert len(receiver.verified) == len(ids)  # exactly one delivery per terminal job
    assert len({msg_id for msg_id, _ in receiver.verified}) == len(ids)
    for task_id in ids:
        msg_id, doc = by_task[task_id]
        delivery = await store.get_delivery(task_id)
        assert delivery is not None
        assert delivery.delivery_id == msg_id
        job = await store.get_job(task_id)
        assert job is not None
        assert doc["data"]["status"] == job.status.value
    statuses = sorted(doc["data"]["status"] for _, doc in receiver.verified)
    assert statuses == ["failed", "success", "success", "success"]
    success = next(doc for _, doc in receiver.verified if doc["data"]["status"] == "success")
    assert success["data"]["result"]["resources"][0]["url"].startswith("http")
    assert success["modellix_proxy"]["final_cost_usd"] == 0.324
    assert await store.get_delivery(unhooked) is None
    submits = stack.sim.requests("submit")
    assert submits
    assert all(HEADER.lower() not in {k.lower() for k in r.headers} for r in submits)
    sample = stack.metrics.registry.get_sample_value
    assert sample("modellix_proxy_webhook_attempts_total", {"outcome": "delivered"}) == 4
    failed = sample("modellix_proxy_webhook_attempts_total", {"outcome": "failed"})
    assert failed is not None
    assert failed >= 4


async def test_dead_lettered_delivery_is_listed_and_redelivered_through_the_admin_api(
    make_stack: Any,
    http: aiohttp.ClientSession,
    receiver: Receiver,
    aiohttp_server: ServerFactory,
) -> None:
    """After max_attempts failures a delivery is dead; the admin API lists and redelivers it."""
    stack: Stack = await make_stack(**webhooks(max_attempts=2))
    store = stack.runtime.store
    assert store is not None
    receiver.answer = 503
    status, doc = await submit(http, stack, "dead letter", receiver.url)
    assert status == 200
    task_id = doc["data"]["task_id"]
    job = None

    async def recorded() -> bool:
        nonlocal job
        job = await store.get_job(task_id)
        return job is not None

    await wait_until(recorded)
    assert job is not None
    receiver.secrets[job.caller] = signing.secret_text(signing.caller_key(MASTER, job.caller))
    await receiver.start()

    async def dead() -> bool:
        d = await store.get_delivery(task_id)
        return d is not None and d.state is DeliveryState.DEAD

    await wait_until(dead)
    admin: TestServer = await aiohttp_server(create_admin_app(ADMIN, stack.metrics, stack.runtime))
    base = str(admin.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer admin-token"}) as plain:
        async with plain.get(f"{base}/admin/webhooks/deliveries?state=dead") as resp:
            answer = await resp.json()
            assert resp.status == 200, answer
            listed = answer["deliveries"]
        assert [(d["task_id"], d["attempts"], d["last_status"]) for d in listed] == [
            (task_id, 2, 503)
        ]
        receiver.answer = 200
        msg_id = listed[0]["delivery_id"]
        async with plain.post(f"{base}/admin/webhooks/deliveries/{msg_id}/redeliver") as resp:
            assert resp.status == 202

        async def delivered() -> bool:
            d = await store.get_delivery(task_id)
            return d is not None and d.state is DeliveryState.DELIVERED

        await wait_until(delivered)
    assert [m for m, _ in receiver.verified] == [msg_id]
    sample = stack.metrics.registry.get_sample_value
    assert sample("modellix_proxy_webhook_attempts_total", {"outcome": "dead"}) == 1


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.7/hook", "private"),
        ("http://[::1]:9/hook", "loopback"),
        ("ftp://example.com/hook", "http(s)"),
        ("http://user:pw@127.0.0.1/hook", "credentials"),
        ("not a url", "http(s)"),
        ("https://hooks.example.com/?k=mlx-vk-abcdefabcdef-" + "a" * 32, "proxy key"),
    ],
)
async def test_callback_url_to_a_forbidden_host_is_refused_before_any_upstream_call(
    make_stack: Any, http: aiohttp.ClientSession, url: str, problem: str
) -> None:
    """Private, loopback, link-local and metadata hosts (not allow-listed) are a 400."""
    stack: Stack = await make_stack(**webhooks(allow_hosts=[]))
    status, doc = await submit(http, stack, "ssrf", url)
    assert status == 400, doc
    assert doc["error_type"] == "bad_callback_url"
    assert problem in doc["message"] or problem == "link-local", doc["message"]
    assert stack.sim.counters.submits_received == 0


async def test_callback_header_is_refused_when_webhooks_are_off(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A callback URL sent to a proxy without webhooks is refused, not silently dropped."""
    status, doc = await submit(http, stack, "off", "https://hooks.example.com/x")
    assert status == 400
    assert doc["error_type"] == "callbacks_disabled"
    assert stack.sim.counters.submits_received == 0


async def test_per_caller_default_callback_url_is_used_without_the_header(
    make_stack: Any, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """A caller's default URL set by the operator receives its jobs' webhooks."""
    stack: Stack = await make_stack(**webhooks(endpoint_cache_seconds=0))
    store = stack.runtime.store
    assert store is not None
    status, doc = await submit(http, stack, "first, to learn the caller", None)
    first = await store.get_job(doc["data"]["task_id"])
    assert first is not None
    await store.set_webhook_endpoint(first.caller, receiver.url, time.time())
    receiver.secrets[first.caller] = signing.secret_text(signing.caller_key(MASTER, first.caller))
    await receiver.start()
    status, doc = await submit(http, stack, "second, by default", None)
    assert status == 200
    task_id = doc["data"]["task_id"]

    async def delivered() -> bool:
        return any(d["data"]["task_id"] == task_id for _, d in receiver.verified)

    await wait_until(delivered)
    assert [d["data"]["task_id"] for _, d in receiver.verified] == [task_id]
