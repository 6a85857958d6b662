"""Shipped pricing (no price table) over every model the simulator lists: the ledger equals the
upstream's billing to the micro-dollar per model, FOCUS sums to it, nothing is unpriced; with
billing left out every estimate lies in the listed range and a hard budget never overshoots."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp

from proxy import money
from proxy.governance import focus
from proxy.simulator.models import MODELS, SCHEMAS
from tests.e2e.conftest import Stack
from tests.e2e.test_client_flow import wait_terminal
from tests.e2e.test_governance import put_budget

MakeStack = Callable[..., Awaitable[Stack]]
NO_PREFLIGHT = {"models": {"preflight": {"mode": "off"}}}


def bodies() -> list[tuple[str, list[dict[str, Any]]]]:
    """Each listed model with its published example bodies."""
    return [
        (spec.slug, [dict(e["value"]) for e in SCHEMAS[spec.slug].examples.values()])
        for spec in MODELS.values()
    ]


async def run_all(
    stack: Stack, http: aiohttp.ClientSession, headers: dict[str, str] | None = None
) -> tuple[dict[str, str], Counter[int]]:
    """Submit one job per model (its first example the proxy's catalog accepts: a refused one
    costs nothing), wait for all; task ids by slug and the statuses of the last answers."""
    ids: dict[str, str] = {}
    statuses: Counter[int] = Counter()
    for slug, examples in bodies():
        for body in examples:
            async with http.post(
                f"{stack.proxy_url}/api/v1/{slug}", json=body, headers=headers or {}
            ) as resp:
                doc = await resp.json(content_type=None)
                status = resp.status
                if status == 200:
                    assert resp.headers["X-Modellix-Proxy-Price-Source"] == "upstream_list"
                    ids[slug] = doc["data"]["task_id"]
                    break
                assert doc.get("error_type") != "unpriced_under_budget", (slug, doc)
                if status == 402:
                    break
        statuses[status] += 1
    await asyncio.gather(*(wait_terminal(http, stack.proxy_url, t) for t in ids.values()))
    return ids, statuses


def billed_by_model(stack: Stack) -> dict[str, int]:
    stack.sim.settle()
    billed: Counter[str] = Counter()
    for record in stack.sim.accounts.records:
        billed[record.slug] += record.amount_micros
    return dict(billed)


async def test_every_listed_model_settles_at_the_upstream_charge(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    stack = await make_stack(**NO_PREFLIGHT)
    ids, statuses = await run_all(stack, http)
    assert statuses[200] >= 12, statuses
    assert 402 not in statuses
    store = stack.runtime.store
    assert store is not None
    jobs = [await store.get_job(task_id) for task_id in ids.values()]
    ledger: Counter[str] = Counter()
    for job in jobs:
        assert job is not None
        assert job.price_source == "upstream_list"
        if job.status.value == "success":
            assert job.cost_source == "charge", job.pinned_slug
        ledger[job.pinned_slug] += job.final_cost_micros or 0
    assert {k: v for k, v in ledger.items() if v} == billed_by_model(stack)
    pages = store.ledger_pages(0, time.time() + 1)
    rows = [focus.focus_row(job) async for page in pages for job in page]
    billed_cost = sum(money.parse(row["BilledCost"]) for row in rows)
    assert billed_cost == stack.sim.billed_total_micros() > 0
    summary = await store.spend_summary(0, time.time() + 1)
    assert summary[0].unpriced_jobs == 0
    kinds = {MODELS[slug.lower()].kind for slug in ids}
    providers = {slug.split("/")[0] for slug in ids if MODELS[slug.lower()].kind == "video"}
    assert kinds >= {"video", "image", "audio"}
    assert len(providers) >= 4


async def test_without_billing_estimates_lie_in_the_listed_range_and_budgets_hold(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """No billing in task answers: final cost = estimate, within min..max x quantity; under a
    hard team budget no listed model is refused as unpriced and the budget is never overshot."""
    stack = await make_stack(**NO_PREFLIGHT)
    stack.sim.report_billing = False
    await put_budget(stack, "team-cap", "team", "studio", "25.00")
    team = {"X-Modellix-Team": "studio"}
    ids, statuses = await run_all(stack, http, team)
    assert statuses[200] > 0
    store = stack.runtime.store
    assert store is not None
    stack.sim.settle()
    charged = {t.task_id: t.cost_micros for t in stack.sim.accounts.tasks.values()}
    spent = 0
    for slug, task_id in ids.items():
        job = await store.get_job(task_id)
        assert job is not None
        assert job.estimate_low_micros is not None
        assert job.estimate_high_micros is not None
        assert job.estimate_low_micros <= charged[task_id] <= job.estimate_high_micros, slug
        if job.status.value == "success":
            assert job.cost_source == "estimate"
            assert job.final_cost_micros == job.estimate_high_micros
            spent += job.final_cost_micros or 0
        listed = MODELS[slug.lower()]
        top = max(Decimal(v) for v in listed.price.values())
        assert job.estimate_high_micros >= charged[task_id], (slug, top)
    assert spent <= 25_000_000
    assert stack.runtime.budgets is not None
    stack.runtime.budgets.invalidate()
    standing = await stack.runtime.budgets.standing(time.time())
    window = standing[0][1]
    assert window is not None
    assert window.spent_micros + window.reserved_micros <= 25_000_000
