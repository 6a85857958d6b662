"""Two proxy processes on one PostgreSQL deliver each completion webhook once between them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from harness.config import proxy_env
from harness.postgres import fresh_postgres
from harness.processes import ProxyProcess, start_proxy
from harness.waits import wait_all_terminal
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.stages.identify import fingerprint
from proxy.stores import open_store
from proxy.webhooks import signing
from tests.e2e.test_replicas import HEADERS, SUBMIT, ServerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
MASTER = "replica-master-secret"
JOBS = 10
SECRET = signing.secret_text(
    signing.caller_key(MASTER, f"fp:{fingerprint(HEADERS['Authorization'])}")
)
WEBHOOKS_ENV = {
    "MODELLIX_PROXY_WEBHOOKS__ENABLED": "true",
    "MODELLIX_PROXY_WEBHOOKS__SIGNING_SECRET": MASTER,
    "MODELLIX_PROXY_WEBHOOKS__ALLOW_HOSTS": '["127.0.0.1"]',
    "MODELLIX_PROXY_WEBHOOKS__TICK_SECONDS": "0.1",
    "MODELLIX_PROXY_WEBHOOKS__BASE_DELAY_SECONDS": "0.2",
}


async def test_deliveries_are_shared_by_replicas_and_sent_once_each(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Each terminal job's webhook reaches the receiver once, verified, from either replica."""
    received: list[tuple[str, str]] = []
    forged = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal forged
        body = await request.read()
        headers = {k: request.headers.get(k, "") for k in signing.headers(b"", "", 0, b"")}
        if not signing.verify(SECRET, headers, body, time.time()):
            forged += 1
            return web.Response(status=400)
        received.append((headers["Webhook-Id"], json.loads(body)["data"]["task_id"]))
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    hook_url = str((await aiohttp_server(receiver)).make_url("/hook"))
    sim = Simulator(
        SimulatorConfig(
            pending_seconds=0.3,
            processing_seconds=(1.0, 2.0),
            concurrency_limit=0,
            initial_balance_usd=Decimal(1000),
        )
    )
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    procs: list[ProxyProcess] = []
    async with fresh_postgres() as store_url:
        env = proxy_env(sim_url, store_url, **WEBHOOKS_ENV)
        try:
            procs = [await start_proxy(env, tmp_path / f"hooks-{i}.log") for i in range(2)]
            ids = []
            async with aiohttp.ClientSession(headers=HEADERS) as session:
                for i in range(JOBS):
                    body = {"prompt": f"replicated hook {i}", "duration": 6}
                    url = f"{procs[i % 2].url}{SUBMIT}"
                    headers = {"X-Modellix-Callback-Url": hook_url}
                    async with session.post(url, json=body, headers=headers) as resp:
                        assert resp.status == 200, await resp.text()
                        ids.append((await resp.json())["data"]["task_id"])
            await wait_all_terminal(store_url, ids)
            store = await open_store(store_url)
            try:
                async with asyncio.timeout(30):
                    while True:
                        if (await store.delivery_counts())["delivered"] == JOBS:
                            break
                        await asyncio.sleep(0.2)
            finally:
                await store.close()
        finally:
            for proc in procs:
                with contextlib.suppress(Exception):
                    await proc.kill()
    assert forged == 0
    assert sorted(task for _, task in received) == sorted(ids)
    assert max(Counter(msg for msg, _ in received).values()) == 1


async def test_replica_killed_mid_delivery_is_taken_over_with_the_same_webhook_id(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """kill -9 of the replica POSTing a webhook: the other sends it again, same Webhook-Id."""
    first_seen = asyncio.Event()
    release = asyncio.Event()
    attempts: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: request.headers.get(k, "") for k in signing.headers(b"", "", 0, b"")}
        assert signing.verify(SECRET, headers, body, time.time())
        attempts.append(headers["Webhook-Id"])
        if len(attempts) == 1:  # hold the first attempt open until its sender is dead
            first_seen.set()
            async with asyncio.timeout(30):
                await release.wait()
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    hook_url = str((await aiohttp_server(receiver)).make_url("/hook"))
    sim = Simulator(SimulatorConfig.fast(concurrency_limit=0))
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    procs: list[ProxyProcess] = []
    async with fresh_postgres() as store_url:
        env = proxy_env(
            sim_url,
            store_url,
            **WEBHOOKS_ENV,
            MODELLIX_PROXY_WEBHOOKS__LEASE_SECONDS="2",
            MODELLIX_PROXY_WEBHOOKS__TIMEOUT_SECONDS="30",
        )
        store = await open_store(store_url)
        try:
            procs = [await start_proxy(env, tmp_path / f"kill-{i}.log") for i in range(2)]
            async with aiohttp.ClientSession(headers=HEADERS) as session:
                body = {"prompt": "delivered despite a crash", "duration": 6}
                headers = {"X-Modellix-Callback-Url": hook_url}
                async with session.post(
                    f"{procs[0].url}{SUBMIT}", json=body, headers=headers
                ) as resp:
                    assert resp.status == 200
                    task_id = (await resp.json())["data"]["task_id"]
            async with asyncio.timeout(30):
                await first_seen.wait()
            held = await store.get_delivery(task_id)
            assert held is not None
            assert held.lease_owner is not None
            [sender] = [p for p in procs if held.lease_owner.endswith(f":{p.process.pid}")]
            await sender.kill()
            release.set()  # the dead sender's connection is gone; its answer is lost
            async with asyncio.timeout(30):
                while True:
                    done = await store.get_delivery(task_id)
                    if done is not None and done.state.value == "delivered":
                        break
                    await asyncio.sleep(0.1)
        finally:
            await store.close()
            for proc in procs:
                with contextlib.suppress(Exception):
                    await proc.kill()
    assert len(attempts) >= 2  # at least once: the lost attempt is sent again
    assert set(attempts) == {held.delivery_id}  # always as one delivery: receivers dedupe on it
