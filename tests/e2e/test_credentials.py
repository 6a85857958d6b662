"""The credential boundary: a proxy-issued key never reaches the upstream, in any form.

A recording relay sits between the proxy and the simulator and keeps every
request verbatim (request line and raw headers); the simulator accepts only the
upstream key, so any other credential would also show as a 401 there.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import aiohttp
import pytest

from proxy.governance.keys import PREFIX
from proxy.simulator import SimulatorConfig
from proxy.stores.records import JobRecord
from tests.e2e.recording import UPSTREAM_KEY, Guarded, Received, ServerFactory, guarded
from tests.e2e.test_client_flow import HAILUO

SUBMIT = "/api/v1/minimax/hailuo-02-t2v"  # $0.324 at 6 s 768P
UPSTREAM_AUTH = f"Bearer {UPSTREAM_KEY}"
TERMINAL = {"success", "failed"}
# Long enough that the client's polls end before the jobs do: the watcher settles them.
SLOW_JOBS = SimulatorConfig.fast(
    concurrency_limit=0,
    api_keys={UPSTREAM_KEY: "default"},
    pending_seconds=0.5,
    processing_seconds=(1.5, 1.8),
)
WATCHER = {
    "enabled": True,
    "first_check_seconds": 0.2,
    "base_delay_seconds": 0.2,
    "max_delay_seconds": 0.4,
    "jitter": 0.0,
    "tick_seconds": 0.1,
    "client_grace_seconds": 0.3,
}
LEDGER = {"budgets": [{"name": "all", "scope": "global", "window": "month", "limit_usd": "100"}]}


def secret_of(token: str) -> str:
    """The secret part of ``mlx-vk-<id>-<secret>`` (searched for on its own too)."""
    return token[len(PREFIX) + 13 :]


def watcher_polls(received: list[Received]) -> list[Received]:
    """Task GETs the proxy made on its own (a client's poll carries X-Forwarded-For)."""
    return [
        r
        for r in received
        if r.method == "GET"
        and r.path_qs.startswith("/api/v1/tasks/")
        and not r.header("X-Forwarded-For")
    ]


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    async with http.request(method, url, headers=headers, json=body) as resp:
        doc: dict[str, Any] = await resp.json(content_type=None)
        return resp.status, doc


async def submit(http: aiohttp.ClientSession, g: Guarded, auth: dict[str, str], n: int) -> str:
    status, doc = await call(
        http, "POST", f"{g.proxy_url}{SUBMIT}", auth, {**HAILUO, "prompt": f"fox {n}"}
    )
    assert status == 200, doc
    task_id: str = doc["data"]["task_id"]
    return task_id


async def settled(g: Guarded, task_ids: list[str], within: float) -> list[JobRecord]:
    """The jobs once all are terminal, or as they stand when ``within`` runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        jobs = [await g.store.get_job(t) for t in task_ids]
        done = [j for j in jobs if j is not None and j.terminal]
        if len(done) == len(task_ids) or loop.time() > deadline:
            return [j for j in jobs if j is not None]
        await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["virtual", "mixed"])
async def test_no_proxy_key_reaches_the_upstream_and_jobs_settle(
    aiohttp_server: ServerFactory, mode: str
) -> None:
    """Polls, foreign polls and pass-through calls by proxy keys send the upstream nothing
    but the upstream key, and the watcher settles the jobs with it."""
    g = await guarded(aiohttp_server, mode, SLOW_JOBS, watcher=WATCHER, governance=LEDGER)
    _, token_a = await g.key(team="studio-a")
    _, token_b = await g.key(team="studio-b")
    revoked_id, revoked = await g.key(team="studio-a")
    await g.store.revoke_virtual_key(revoked_id, time.time())
    _, expired = await g.key(team="studio-a", expires_at=time.time() - 5)
    key_a = {"Authorization": f"Bearer {token_a}"}
    key_b = {"Authorization": f"Bearer {token_b}"}
    tokens = [token_a, token_b, revoked, expired]
    async with aiohttp.ClientSession() as http:
        ids = [await submit(http, g, key_a, n) for n in range(3)]
        b_id = await submit(http, g, key_b, 99)
        # Many client polls of their own jobs while they run, and of the other key's.
        seen_terminal = False
        for _ in range(6):
            for task_id in ids:
                status, doc = await call(
                    http, "GET", f"{g.proxy_url}/api/v1/tasks/{task_id}", key_a
                )
                assert status == 200, doc
                seen_terminal |= doc["data"]["status"] in TERMINAL
                status, doc = await call(
                    http, "GET", f"{g.proxy_url}/api/v1/tasks/{task_id}", key_b
                )
                assert (status, doc["error_type"]) == (404, "task_not_owned")
            status, _ = await call(http, "GET", f"{g.proxy_url}/api/v1/tasks/{b_id}", key_b)
            assert status == 200
            if seen_terminal:
                break
            await asyncio.sleep(0.05)  # the client's poll interval
        # Pass-through calls by a proxy key, with the key also in places it does not belong.
        base64_token = base64.b64encode(f"x:{token_a}".encode()).decode()
        stray = {
            **key_a,
            "X-Api-Key": token_a,
            "Cookie": f"session=1; api_key={token_a}",
            "Proxy-Authorization": f"Bearer {token_a}",
            "X-Note": token_a.replace("-", "%2D").upper(),
        }
        for headers in (key_a, stray, {"Authorization": f"Bearer   {token_a}  "}):
            status, doc = await call(http, "GET", f"{g.proxy_url}/api/v1/models", headers)
            assert status == 200, doc
        for path in (
            f"/api/v1/models?api_key={token_a}",
            f"/api/v1/tasks/{ids[0]}?key={token_a.upper()}",
            f"/api/v1/team/balance?token={token_a.replace('-', '%2D')}",
        ):
            status, doc = await call(http, "GET", f"{g.proxy_url}{path}", key_a)
            assert (status, doc["error_type"]) == (401, "key_in_url"), path
        status, doc = await call(
            http, "POST", f"{g.proxy_url}{SUBMIT}?api_key={token_a}", key_a, HAILUO
        )
        assert (status, doc["error_type"]) == (401, "key_in_url")
        # Keys that are no longer valid, or hidden in another shape, are refused here.
        refused = [
            {"Authorization": f"Bearer {revoked}"},
            {"Authorization": f"Bearer {expired}"},
            {"Authorization": f"Bearer {token_a.upper()}"},
            {"Authorization": f"Bearer {token_a[:-4]}"},
            {"Authorization": f"Bearer x {token_a}"},
            {"Authorization": f"Basic {base64_token}"},
        ]
        for headers in refused:
            for method, path, body in (
                ("POST", SUBMIT, HAILUO),
                ("GET", f"/api/v1/tasks/{ids[0]}", None),
                ("GET", "/api/v1/models", None),
                ("GET", "/api/v1/team/balance", None),
            ):
                status, doc = await call(http, method, f"{g.proxy_url}{path}", headers, body)
                assert status == 401, (headers, path, doc)
        if mode == "mixed":  # the caller's own upstream key still passes through
            own = {"Authorization": UPSTREAM_AUTH}
            status, _ = await call(http, "GET", f"{g.proxy_url}/api/v1/models", own)
            assert status == 200

        jobs = await settled(g, [*ids, b_id], within=15.0)

    received = g.relay.received
    assert g.relay.carrying(PREFIX) == []
    for token in tokens:
        assert g.relay.carrying(secret_of(token)) == []
    assert g.sim.counters.tasks_created == 4
    polls = watcher_polls(received)
    assert polls, "the watcher never polled"
    wrong = sorted({a for r in polls for a in r.header("Authorization") if a != UPSTREAM_AUTH})
    assert not wrong, f"the watcher polled with {wrong} instead of the upstream key"
    assert [r for r in received if r.status == 401] == []
    assert all(r.header("Authorization") == [UPSTREAM_AUTH] for r in received)
    assert sorted(j.task_id for j in jobs if j.terminal) == sorted([*ids, b_id])
    for job in jobs:
        assert job.status.value == "success"
        assert job.final_cost_micros == 324_000  # the upstream's charge
        assert job.cost_source == "charge"
    assert any(job.watcher_polls > 0 for job in jobs)
    assert g.runtime.budgets is not None
    [(_, window)] = await g.runtime.budgets.standing(time.time())
    assert window is not None
    assert (window.spent_micros, window.reserved_micros) == (4 * 324_000, 0)


async def test_passthrough_mode_refuses_proxy_keys(aiohttp_server: ServerFactory) -> None:
    """A pass-through proxy refuses anything shaped like a proxy key rather than forward it."""
    g = await guarded(aiohttp_server, "passthrough")
    token = "mlx-vk-0123456789ab-" + "s" * 43
    async with aiohttp.ClientSession() as http:
        for headers in (
            {"Authorization": f"Bearer {token}"},
            {"Authorization": f"Bearer {UPSTREAM_KEY} {token}"},
        ):
            for method, path, body in (
                ("POST", SUBMIT, HAILUO),
                ("GET", "/api/v1/tasks/task-1", None),
                ("GET", "/api/v1/models", None),
                ("GET", "/api/v1/team/balance", None),
            ):
                status, doc = await call(http, method, f"{g.proxy_url}{path}", headers, body)
                assert status == 401, (path, doc)
                assert doc["message"].startswith("Authentication failed: ")
        status, doc = await call(
            http,
            "GET",
            f"{g.proxy_url}/api/v1/apikey/validate",
            {"Authorization": f"Bearer {token}"},
        )
        assert (status, doc) == (
            200,
            {"code": 0, "message": "success", "data": {"is_valid": False}},
        )
        own = {"Authorization": UPSTREAM_AUTH, "X-Api-Key": token}
        status, _ = await call(http, "GET", f"{g.proxy_url}/api/v1/models", own)
        assert status == 200
    assert [r.path_qs for r in g.relay.received] == ["/api/v1/models"]
    assert g.relay.carrying(PREFIX) == []
