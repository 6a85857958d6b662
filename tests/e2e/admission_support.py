"""Helpers of the admission queue tests: virtual keys, submits, polling q- ids to the end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from proxy.governance.keys import new_key
from proxy.stores.admission_records import QueuedSubmit, QueueState
from proxy.stores.base import Store

UPSTREAM_KEY = "sk-admission-upstream-key-01"
SUBMIT = "/api/v1/minimax/hailuo-02-t2v"  # $0.324 at 6 s 768P
BODY = {"prompt": "a red fox running through snow", "duration": 6, "resolution": "768P"}
TERMINAL = frozenset({"success", "failed"})


def queue_env(upstream_key: str) -> dict[str, str]:
    """Proxy settings for crash tests of the admission queue: virtual keys over one upstream
    key, the queue at the simulator's concurrency of 3, and short leases, ticks and backoff
    so that a restarted proxy takes over a dead one's work within seconds."""
    return {
        "MODELLIX_PROXY_KEYS__MODE": "virtual",
        "MODELLIX_PROXY_KEYS__CACHE_SECONDS": "0.1",
        "MODELLIX_PROXY_UPSTREAM__API_KEY": upstream_key,
        "MODELLIX_PROXY_RECOVERY__LEASE_SECONDS": "2",
        "MODELLIX_PROXY_RECOVERY__HEARTBEAT_SECONDS": "0.5",
        "MODELLIX_PROXY_ADMISSION__ENABLED": "true",
        "MODELLIX_PROXY_ADMISSION__CONCURRENCY": "3",
        "MODELLIX_PROXY_ADMISSION__TICK_SECONDS": "0.1",
        "MODELLIX_PROXY_ADMISSION__LEASE_SECONDS": "1.5",
        "MODELLIX_PROXY_ADMISSION__BACKOFF_SECONDS": "0.2",
    }


async def virtual_key(store: Store, **fields: Any) -> tuple[str, str]:
    """A new virtual key: its id and its token."""
    record, token = new_key(time.time(), **fields)
    await store.create_virtual_key(record)
    return record.key_id, token


async def submit(
    http: aiohttp.ClientSession,
    origin: str,
    token: str,
    prompt: str,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST one submit; its status, JSON body and headers."""
    sent = {"Authorization": f"Bearer {token}", **(headers or {})}
    async with http.post(f"{origin}{SUBMIT}", json={**BODY, "prompt": prompt}, headers=sent) as r:
        return r.status, await r.json(), dict(r.headers)


async def poll_to_end(
    http: aiohttp.ClientSession,
    origin: str,
    token: str,
    task_id: str,
    within: float = 60.0,
    url: str | None = None,
) -> dict[str, Any]:
    """Poll ``task_id`` through the proxy (at ``url``, the submit answer's ``get_result.url``,
    when given) until it answers a terminal status (or an error), checking what the official
    CLI's ``--wait`` checks: ``data.task_id`` is the id asked for."""
    deadline = time.monotonic() + within
    target = url or f"{origin}/api/v1/tasks/{task_id}"
    while True:
        async with http.get(target, headers={"Authorization": f"Bearer {token}"}) as r:
            doc: dict[str, Any] = await r.json()
            if r.status != 200:
                return doc
        data = doc.get("data") or {}
        assert data.get("task_id") == task_id, doc  # what the official client checks
        if data.get("status") in TERMINAL:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"{task_id} not terminal in {within} s: {doc}")
        await asyncio.sleep(0.05)


def dispatch_order(rows: Sequence[QueuedSubmit]) -> list[str]:
    """Callers of the rows that left the queue for the upstream, in dispatch order."""
    sent = [
        r
        for r in rows
        if r.dispatched_at is not None
        and r.state in (QueueState.DISPATCHED, QueueState.UNKNOWN, QueueState.DISPATCHING)
    ]
    return [r.caller for r in sorted(sent, key=lambda r: (r.dispatched_at or 0.0, r.queue_id))]


def worst_imbalance(order: Sequence[str], callers: Sequence[str]) -> int:
    """The largest difference between two callers' dispatch counts over every prefix of
    ``order``, while every caller still had submits left to dispatch."""
    left = {c: order.count(c) for c in callers}
    counts = dict.fromkeys(callers, 0)
    worst = 0
    for caller in order:
        if min(left.values()) == 0:
            break
        counts[caller] += 1
        left[caller] -= 1
        worst = max(worst, max(counts.values()) - min(counts.values()))
    return worst
