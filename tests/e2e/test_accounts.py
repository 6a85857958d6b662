"""Several Modellix accounts behind one proxy: each virtual key's requests go out with its
team's account key, and pass-through requests with the caller's own key, as before."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from proxy.admin import create_admin_app
from proxy.config import Settings
from proxy.governance.keys import new_key
from proxy.simulator import SimulatorConfig
from tests.e2e.conftest import ServerFactory, Stack
from tests.e2e.test_client_flow import HAILUO

ACCOUNTS = {
    "studio": {"api_key": "sk-studio-account-0001", "teams": ["video"]},
    "agency": {"api_key": "sk-agency-account-0002", "teams": ["ads"], "concurrency": 4},
}
CLIENT_KEY = "sk-client-own-account-0003"
SIM_TEAMS = {"sk-studio-account-0001": "t-studio", "sk-agency-account-0002": "t-agency",
             CLIENT_KEY: "t-client"}  # fmt: skip
RPM = {"t-studio": 50, "t-agency": 70, "t-client": 90}
BALANCE = {"t-studio": 40, "t-agency": 300, "t-client": 12}


async def _stack(make_stack: Callable[..., Awaitable[Stack]]) -> Stack:
    sim = SimulatorConfig.fast(
        concurrency_limit=0,
        api_keys=SIM_TEAMS,
        teams={t: {"balance_usd": BALANCE[t], "rpm": RPM[t]} for t in RPM},
    )
    return await make_stack(
        sim, keys={"mode": "mixed"}, upstream={"accounts": ACCOUNTS}, watcher={"enabled": True}
    )


async def _token(stack: Stack, team: str) -> str:
    store = stack.runtime.store
    assert store is not None
    record, token = new_key(time.time(), team=team)
    await store.create_virtual_key(record)
    return f"Bearer {token}"


async def _get(url: str, authorization: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": authorization}) as http,
        http.get(url) as resp,
    ):
        return resp.status, await resp.json(), dict(resp.headers)


async def _submit(stack: Stack, authorization: str, prompt: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": authorization}) as http,
        http.post(f"{stack.proxy_url}/api/v1/minimax/hailuo", json={**HAILUO, "prompt": prompt})
        as resp,
    ):  # fmt: skip
        return resp.status, await resp.json()


async def test_each_team_uses_its_account_key(
    make_stack: Callable[..., Awaitable[Stack]],
) -> None:
    """Balance, rate-limit headers and submits of a virtual key are its account's; the job
    records the account; a pass-through caller still uses (and is billed on) its own key."""
    stack = await _stack(make_stack)
    video, ads = await _token(stack, "video"), await _token(stack, "ads")
    own = f"Bearer {CLIENT_KEY}"
    for token, team in ((video, "t-studio"), (ads, "t-agency"), (own, "t-client")):
        status, doc, _ = await _get(f"{stack.proxy_url}/api/v1/team/balance", token)
        assert (status, doc["data"]["balance"]) == (200, BALANCE[team]), team
        status, _, headers = await _get(f"{stack.proxy_url}/api/v1/models", token)
        assert (status, headers.get("X-RateLimit-Limit")) == (200, str(RPM[team])), team
    sent = {}
    for token, name in ((video, "video"), (ads, "ads"), (own, "own")):
        status, doc = await _submit(stack, token, f"a shot for {name}")
        assert status == 200, doc
        sent[name] = doc["data"]["task_id"]
    tasks = stack.sim.tasks
    assert {n: tasks[t].team for n, t in sent.items()} == {
        "video": "t-studio", "ads": "t-agency", "own": "t-client"
    }  # fmt: skip
    store = stack.runtime.store
    assert store is not None
    jobs = {n: await store.get_job(t) for n, t in sent.items()}
    assert {n: j.account for n, j in jobs.items() if j is not None} == {
        "video": "studio", "ads": "agency", "own": None
    }  # fmt: skip


async def test_a_team_without_an_account_is_refused_plainly(
    make_stack: Callable[..., Awaitable[Stack]],
) -> None:
    """No account lists the team and there is no default: 503 naming the team, nothing sent."""
    stack = await _stack(make_stack)
    before = stack.sim.counters.submits_received
    status, doc = await _submit(stack, await _token(stack, "nobody"), "lost")
    assert status == 503
    assert doc["code"] == 503
    assert "no Modellix account for team nobody" in doc["message"]
    assert stack.sim.counters.submits_received == before


async def test_the_admin_view_lists_each_account_without_its_key(
    make_stack: Callable[..., Awaitable[Stack]], aiohttp_server: ServerFactory
) -> None:
    """GET /admin/accounts and the account gauges: every account with its teams,
    concurrency and tasks in flight; no key in the answer."""
    stack = await _stack(make_stack)
    status, _ = await _submit(stack, await _token(stack, "ads"), "in flight")
    assert status == 200
    settings = Settings.model_validate({"admin": {"token": "admin-token"}})
    admin: TestServer = await aiohttp_server(
        create_admin_app(settings, stack.metrics, stack.runtime)
    )
    url = str(admin.make_url("/admin/accounts"))
    status, doc, _ = await _get(url, "Bearer admin-token")
    assert status == 200
    by_name = {a["name"]: a for a in doc["accounts"]}
    assert sorted(by_name) == ["agency", "studio"]
    assert (by_name["agency"]["teams"], by_name["agency"]["in_flight"]) == (["ads"], 1)
    assert (by_name["studio"]["in_flight"], by_name["studio"]["default"]) == (0, False)
    assert by_name["studio"]["balance"] is None  # balance reconciliation is off
    assert (by_name["agency"]["concurrency"], by_name["studio"]["concurrency"]) == (4, None)
    assert "sk-" not in str(doc)
    gauges = stack.runtime.gauges
    assert gauges is not None
    await gauges.round()
    sample = stack.metrics.registry.get_sample_value
    assert sample("modellix_proxy_account_in_flight", {"account": "agency"}) == 1
    assert sample("modellix_proxy_account_in_flight", {"account": "studio"}) == 0
    assert sample("modellix_proxy_account_concurrency", {"account": "agency"}) == 4
