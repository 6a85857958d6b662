"""Client traffic for the observability tests: submits, polls, pass-through, errors, faults."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from harness.waits import bound_for, wait_until
from proxy.simulator import SimulatorConfig
from proxy.stores.base import Store

KEY = "sk-LEAKCHECK-7f3a9c2e51d04b8e9a61"
BAD_KEY = "sk-LEAKCHECK-revoked-0a1b2c3d4e5f"
AUTH = {"Authorization": f"Bearer {KEY}"}
ALIAS_PATH = "/api/v1/minimax/hailuo"
PINNED_PATH = "/api/v1/minimax/hailuo-02-t2v"
HAILUO: dict[str, Any] = {
    "prompt": "a red fox running through snow",
    "duration": 6,
    "resolution": "768P",
}
TERMINAL = frozenset({"success", "failed"})
TERMINAL_S = bound_for(SimulatorConfig.fast(concurrency_limit=0))
"""A task of the stack fixture's simulator, terminal through the proxy."""


async def submit(
    http: aiohttp.ClientSession,
    base: str,
    path: str = ALIAS_PATH,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST a submit; the status and the JSON answer."""
    async with http.post(
        f"{base}{path}", json=body or HAILUO, headers={**AUTH, **(headers or {})}
    ) as resp:
        doc: dict[str, Any] = await resp.json(content_type=None)
        return resp.status, doc


async def accepted(http: aiohttp.ClientSession, base: str, **kwargs: Any) -> str:
    """Submit and return the task id of the accepted job."""
    status, doc = await submit(http, base, **kwargs)
    assert status == 200, doc
    task_id: str = doc["data"]["task_id"]
    return task_id


async def poll_until_terminal(
    http: aiohttp.ClientSession, base: str, task_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Poll through the proxy, as the official client does, until the task is terminal."""
    async with asyncio.timeout(TERMINAL_S):
        while True:
            async with http.get(f"{base}/api/v1/tasks/{task_id}", headers=headers or AUTH) as resp:
                doc: dict[str, Any] = await resp.json(content_type=None)
            if resp.status == 200 and doc["data"]["status"] in TERMINAL:
                return doc
            await asyncio.sleep(0.02)


async def job_terminal(store: Store, task_id: str) -> None:
    """Wait until the ledger has the job in a terminal state."""

    async def done() -> bool:
        job = await store.get_job(task_id)
        return job is not None and job.terminal

    await wait_until(done, what="the job terminal in the ledger")


async def get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """GET a URL; the status and raw body."""
    async with http.get(url, headers=headers if headers is not None else AUTH) as resp:
        return resp.status, await resp.read()


async def round_of_traffic(http: aiohttp.ClientSession, base: str) -> None:
    """One job to terminal, two refused inputs, one pass-through: what the dashboards chart."""
    task_id = await accepted(http, base)
    await poll_until_terminal(http, base, task_id)
    async with http.post(
        f"{base}{PINNED_PATH}",
        data=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
    no_prompt = {k: v for k, v in HAILUO.items() if k != "prompt"}  # priced, then refused
    assert (await submit(http, base, path=PINNED_PATH, body=no_prompt))[0] == 400
    status, _ = await get(http, f"{base}/api/v1/models")
    assert status == 200
