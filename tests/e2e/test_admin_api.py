"""The operator read API: jobs by id and by filter, and a spend summary, behind a token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from harness.config import settings_for
from proxy.admin import create_admin_app
from proxy.telemetry.metrics import Metrics
from tests.e2e.conftest import Stack
from tests.e2e.test_client_flow import HAILUO, wait_terminal

ServerFactory = Callable[..., Awaitable[TestServer]]
TOKEN = "admin-secret-token"


async def admin_url(stack: Stack, aiohttp_server: ServerFactory, token: str | None = TOKEN) -> str:
    settings = settings_for(stack.sim_url, admin={"enabled": True, "token": token})
    server = await aiohttp_server(create_admin_app(settings, Metrics(), stack.runtime))
    return str(server.make_url("")).rstrip("/")


async def test_jobs_and_spend_read_back(
    stack: Stack, http: aiohttp.ClientSession, aiohttp_server: ServerFactory
) -> None:
    """A finished job is readable by id and by status, and the spend summary adds it up."""
    headers = {"X-Modellix-Team": "studio-a"}
    async with http.post(
        f"{stack.proxy_url}/api/v1/minimax/hailuo", json=HAILUO, headers=headers
    ) as r:
        task_id = (await r.json())["data"]["task_id"]
    await wait_terminal(http, stack.proxy_url, task_id)
    base = await admin_url(stack, aiohttp_server)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=auth) as admin:
        async with admin.get(f"{base}/admin/jobs/{task_id}") as resp:
            job: dict[str, Any] = await resp.json()
        assert job["status"] == "success"
        assert job["team"] == "studio-a"
        assert job["final_cost_usd"] == 0.324
        assert [h["status"] for h in job["history"]][-1] == "success"
        async with admin.get(f"{base}/admin/jobs", params={"status": "success"}) as resp:
            page = await resp.json()
        assert [j["task_id"] for j in page["jobs"]] == [task_id]
        async with admin.get(f"{base}/admin/spend", params={"group_by": "team,model"}) as resp:
            spend = await resp.json()
        assert spend["total_final_cost_micros"] == 324_000
        assert spend["rows"][0]["team"] == "studio-a"
        async with admin.get(f"{base}/admin/spend", params={"group_by": "colour"}) as resp:
            assert resp.status == 400
        async with admin.get(f"{base}/admin/jobs/missing") as resp:
            assert resp.status == 404


async def test_admin_api_needs_the_token(stack: Stack, aiohttp_server: ServerFactory) -> None:
    """Without the right bearer token the admin API answers 401; metrics stay open."""
    base = await admin_url(stack, aiohttp_server)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/admin/jobs") as resp:
            assert resp.status == 401
        async with session.get(f"{base}/admin/jobs", headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401
        async with session.get(f"{base}/metrics") as resp:
            assert resp.status == 200
    off = await admin_url(stack, aiohttp_server, token=None)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{off}/admin/jobs", headers={"Authorization": "Bearer x"}) as r,
    ):
        assert r.status == 401
        assert "off" in (await r.json())["message"]
