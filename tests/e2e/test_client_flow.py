"""A Modellix client pointed at the proxy gets what it gets from the upstream directly."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from harness.waits import bound_for
from proxy.simulator import SimulatorConfig
from tests.e2e.conftest import KEY, Stack

HAILUO = {"prompt": "a red fox running through snow", "duration": 6, "resolution": "768P"}
TERMINAL_S = bound_for(SimulatorConfig.fast(concurrency_limit=0))
"""A task of the ``stack`` fixture's simulator, terminal through the proxy."""


async def wait_terminal(
    http: aiohttp.ClientSession, base: str, task_id: str, within: float = TERMINAL_S
) -> dict[str, Any]:
    """Poll the task as the official client does until it is terminal, at most ``within`` s
    (``bound_for`` the simulator when it answers faults: a poll may wait out a 429)."""
    async with asyncio.timeout(within):
        while True:
            async with http.get(f"{base}/api/v1/tasks/{task_id}") as resp:
                # Like the official client: 429 and 5xx are transient while polling.
                assert resp.status == 200 or resp.status == 429 or resp.status >= 500
                doc: dict[str, Any] = await resp.json(content_type=None)
            if resp.status == 200 and doc["data"]["status"] in {"success", "failed"}:
                return doc
            await asyncio.sleep(0.05)


async def test_submit_wait_and_get_match_direct(stack: Stack, http: aiohttp.ClientSession) -> None:
    """Submit, wait for the result and get the task: same shapes through the proxy as directly."""
    results = {}
    for name, base in (("direct", stack.sim_url), ("proxy", stack.proxy_url)):
        async with http.post(f"{base}/api/v1/minimax/hailuo-02-t2v", json=HAILUO) as resp:
            assert resp.status == 200
            submitted = await resp.json()
        task_id = submitted["data"]["task_id"]
        assert submitted["code"] == 0
        assert submitted["data"]["status"] == "pending"
        assert submitted["data"]["get_result"]["url"].startswith(base)
        done = await wait_terminal(http, base, task_id)
        results[name] = done
    direct, proxied = results["direct"], results["proxy"]
    assert proxied["data"]["status"] == direct["data"]["status"] == "success"
    assert set(proxied["data"]) == set(direct["data"])
    assert len(proxied["data"]["result"]["resources"]) == len(direct["data"]["result"]["resources"])


async def test_followed_get_result_url_stays_on_the_proxy(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A client that follows get_result.url keeps going through the proxy."""
    async with http.post(
        f"{stack.proxy_url}/api/v1/minimax/hailuo-02-t2v/async", json=HAILUO
    ) as resp:
        doc = await resp.json()
    url = doc["data"]["get_result"]["url"]
    assert url.startswith(stack.proxy_url + "/api/v1/tasks/")
    polls_before = len(stack.sim.requests(route="poll"))
    async with http.get(url) as resp:
        assert resp.status == 200
        assert (await resp.json())["data"]["task_id"] == doc["data"]["task_id"]
    assert len(stack.sim.requests(route="poll")) == polls_before + 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/minimax/hailuo-02-t2v",
        "/api/v1/minimax/hailuo-02-t2v/async",
        "/api/v1/text-to-video/minimax/hailuo-02-t2v/async",
    ],
)
async def test_three_path_forms_forwarded_in_the_clients_form(
    path: str, stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Each submit path form is accepted and forwarded in the same form, exactly once."""
    async with http.post(f"{stack.proxy_url}{path}", json=HAILUO) as resp:
        assert resp.status == 200
    posts = stack.sim.requests(method="POST")
    assert [entry.path for entry in posts] == [path]


async def test_models_validate_and_balance_pass_through(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Model list, key validation and balance read the same through the proxy as directly.

    The proxy marks each listed model with how far it validates it (``proxy_validation``).
    """
    for path in ("/api/v1/models", "/api/v1/apikey/validate", "/api/v1/team/balance"):
        async with (
            http.get(f"{stack.sim_url}{path}") as direct,
            http.get(f"{stack.proxy_url}{path}") as proxied,
        ):
            assert direct.status == proxied.status == 200
            seen = await proxied.json()
            if path == "/api/v1/models":
                assert seen["models"], "the model list is empty"
                for item in seen["models"]:
                    assert item.pop("proxy_validation") in ("catalog", "upstream-listed")
            assert await direct.json() == seen


async def test_task_ids_with_a_slash(make_stack: Any, http: aiohttp.ClientSession) -> None:
    """Task ids containing '/' (sent encoded as %2F by the official client) reach the upstream."""
    from proxy.simulator import SimulatorConfig

    stack = await make_stack(SimulatorConfig.fast(concurrency_limit=0, task_id_prefix="folder/"))
    async with http.post(f"{stack.proxy_url}/api/v1/minimax/hailuo-02-t2v", json=HAILUO) as resp:
        task_id = (await resp.json())["data"]["task_id"]
    assert "/" in task_id
    encoded = task_id.replace("/", "%2F")
    async with http.get(f"{stack.proxy_url}/api/v1/tasks/{encoded}") as resp:
        assert resp.status == 200
        assert (await resp.json())["data"]["task_id"] == task_id


async def test_one_upstream_post_per_client_post(stack: Stack, http: aiohttp.ClientSession) -> None:
    """A paid POST reaches the upstream exactly once per client POST."""
    for _ in range(5):
        async with http.post(
            f"{stack.proxy_url}/api/v1/minimax/hailuo-02-t2v", json=HAILUO
        ) as resp:
            assert resp.status == 200
    assert len(stack.sim.requests(method="POST")) == 5
    assert stack.sim.counters.tasks_created == 5


async def test_job_followed_to_terminal_and_ledger_matches_billing(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A submitted job is recorded, followed to success, and its cost equals what was billed."""
    async with http.post(f"{stack.proxy_url}/api/v1/minimax/hailuo", json=HAILUO) as resp:
        assert resp.headers["X-Modellix-Proxy-Model"] == "minimax/hailuo-02-t2v"
        assert resp.headers["X-Modellix-Proxy-Alias"] == "minimax/hailuo"
        # Priced from the upstream's list ($0.054-$0.12/s): reserved at the top of the range
        assert resp.headers["X-Modellix-Proxy-Price-Source"] == "upstream_list"
        assert resp.headers["X-Modellix-Proxy-Estimated-Cost-USD"] == "0.720000"
        assert resp.headers["X-Modellix-Proxy-Estimated-Cost-Range-USD"] == "0.324000-0.720000"
        task_id = (await resp.json())["data"]["task_id"]
    assert stack.sim.requests(method="POST")[0].path == "/api/v1/minimax/hailuo-02-t2v"
    await wait_terminal(http, stack.proxy_url, task_id)
    store = stack.runtime.store
    assert store is not None
    job = await store.get_job(task_id)
    assert job is not None
    assert job.status.value == "success"
    assert job.alias == "minimax/hailuo"
    assert job.final_cost_micros == 324_000  # the upstream's charge, not the estimate
    assert (job.price_source, job.cost_source) == ("upstream_list", "charge")
    assert job.output_urls
    assert stack.sim.billed_total_micros() == 324_000
    assert job.caller.startswith("fp:")
    assert KEY.split()[1] not in job.caller
