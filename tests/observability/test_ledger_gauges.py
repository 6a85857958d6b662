"""Ledger gauges on a live proxy: budgets created or deleted mid-window, exhaustion figures."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from proxy.governance import report
from proxy.state import METRICS, RUNTIME
from tests.observability.conftest import LiveStack, LiveStackFactory
from tests.observability.traffic import HAILUO, accepted, poll_until_terminal, submit

TOKEN = "admin-token-for-ledger-gauges"
TEAM = {"X-Modellix-Team": "video", "X-Modellix-Project": "launch"}
PATH = "/api/v1/minimax/hailuo-02-t2v"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def stack(make_live: LiveStackFactory) -> LiveStack:
    """A proxy with an admin token, teams and projects, its watcher on."""
    return await make_live(
        admin={"enabled": True, "host": "127.0.0.1", "port": 0, "token": TOKEN},
        watcher={"enabled": True, "tick_seconds": 0.2},
        identity={"teams": ["video"], "projects": ["launch"]},
        governance={"cache_seconds": 0},
    )


async def _admin(
    http: aiohttp.ClientSession, stack: LiveStack, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.request(method, f"{stack.admin_url}{path}", json=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def _job(http: aiohttp.ClientSession, stack: LiveStack) -> None:
    task_id = await accepted(http, stack.proxy_url, path=PATH, body=HAILUO, headers=TEAM)
    await poll_until_terminal(http, stack.proxy_url, task_id)


async def _refresh(stack: LiveStack) -> None:
    gauges = stack.app[RUNTIME].gauges
    assert gauges is not None
    await gauges.ledger.refresh(percentiles=True)


def _value(stack: LiveStack, name: str, **labels: str) -> float | None:
    return stack.app[METRICS].registry.get_sample_value(f"modellix_proxy_{name}", labels)


async def test_budget_created_mid_day_counts_the_day_and_deleted_one_vanishes(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    """A day budget created after two $0.324 jobs shows $0.648 spent; deleted, it is gone."""
    await _job(http, stack)
    await _job(http, stack)
    body = {"scope": "team", "subject": "video", "window": "day", "limit_usd": 1}
    status, _ = await _admin(http, stack, "PUT", "/admin/budgets/video-day", body)
    assert status == 200
    await _refresh(stack)
    names = {"budget": "video-day", "scope": "team", "window": "day"}
    assert _value(stack, "budget_spent_usd", **names) == pytest.approx(0.648)
    assert _value(stack, "budget_limit_usd", **names) == 1.0
    # $0.352 left: one more $0.324 job fits, the next does not (402), $0.972 of $1 spent.
    await _job(http, stack)
    status, doc = await submit(http, stack.proxy_url, path=PATH, body=HAILUO, headers=TEAM)
    assert status == 402, doc
    await _refresh(stack)
    assert _value(stack, "budget_spent_usd", **names) == pytest.approx(0.972)
    assert _value(stack, "price_smallest_job_usd") == pytest.approx(0.324)
    refusals = _value(stack, "budget_refusals_total", budget="video-day", scope="team")
    assert refusals == 1.0
    status, _ = await _admin(http, stack, "DELETE", "/admin/budgets/video-day")
    assert status == 200
    await _refresh(stack)
    assert _value(stack, "budget_limit_usd", **names) is None
    assert _value(stack, "budget_spent_usd", **names) is None


async def test_ledger_gauges_hold_spend_counts_and_exact_percentiles(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    """Day, month and total spend, job counts and P50/P95 come from the ledger exactly,
    and the weekly report rolls up the same cost per job."""
    await _job(http, stack)
    task_id = await accepted(
        http, stack.proxy_url, path=PATH, body={**HAILUO, "resolution": "1080P"}, headers=TEAM
    )
    await poll_until_terminal(http, stack.proxy_url, task_id)
    await _refresh(stack)
    series = {"team": "video", "project": "launch", "model": "minimax/hailuo-02-t2v"}
    for window in ("day", "month", "total"):
        assert _value(stack, "ledger_spend_usd", window=window, **series) == pytest.approx(1.044)
        assert _value(stack, "ledger_jobs", window=window, **series) == 2.0
    model = {"model": "minimax/hailuo-02-t2v"}
    assert _value(stack, "ledger_job_cost_p50_usd", **model) == pytest.approx(0.324)
    assert _value(stack, "ledger_job_cost_p95_usd", **model) == pytest.approx(0.72)
    assert _value(stack, "ledger_costed_jobs", **model) == 2.0
    rows = await report.build(stack.store, 0, time.time() + 1, ["week", "model"])
    assert [(r["week"], r["model"], r["cost_per_job_p50_usd"], r["cost_per_job_p95_usd"])
            for r in rows] == [(report.week_of(time.strftime("%Y-%m-%d", time.gmtime())),
                                "minimax/hailuo-02-t2v", "0.324000", "0.720000")]  # fmt: skip
