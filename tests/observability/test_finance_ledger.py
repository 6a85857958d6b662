"""Finance panels on a real Prometheus equal the ledger to the cent, first jobs included."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dashboards.expressions import dashboard_expressions
from proxy.governance.windows import window_bounds
from proxy.money import sample
from tests.observability.conftest import LiveStack, LiveStackFactory
from tests.observability.test_real_prometheus import (
    JOB,
    Prometheus,
    prometheus_scraping,
    query,
    wait_until,
)
from tests.observability.traffic import HAILUO, accepted, poll_until_terminal, submit

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
TEAMS = ("video", "ads")
PROJECTS = ("launch", "brand")
MODELS = ("/api/v1/minimax/hailuo-02-t2v", "/api/v1/minimax/hailuo-2.3-t2v")
BODIES: tuple[dict[str, Any], ...] = (
    HAILUO,  # 6 s at 768P: $0.324
    {**HAILUO, "duration": 10},  # $0.54
    {**HAILUO, "resolution": "1080P"},  # 6 s at 1080P: $0.72
)
WITHIN_S = 45.0
CENT = 0.005
SUBSTITUTIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def _workload(http: aiohttp.ClientSession, stack: LiveStack) -> int:
    """One job per team x project x model (each the first of its series), plus refusals."""
    base, jobs = stack.proxy_url, 0
    for i, (team, project, path) in enumerate(
        (t, p, m) for t in (*TEAMS, "unlisted") for p in PROJECTS for m in MODELS
    ):
        headers = {"X-Modellix-Team": team, "X-Modellix-Project": project}
        body = BODIES[i % len(BODIES)]
        task_id = await accepted(http, base, path=path, body=body, headers=headers)
        await poll_until_terminal(http, base, task_id)
        jobs += 1
        if i % 4 == 0:  # a priced body without a prompt: refused, its estimate saved
            no_prompt = {k: v for k, v in body.items() if k != "prompt"}
            status, _ = await submit(http, base, path=path, body=no_prompt, headers=headers)
            assert status == 400
    return jobs


async def _number(http: aiohttp.ClientSession, prom: Prometheus, expr: str) -> float | None:
    answer = await query(http, prom, expr)
    if answer.get("status") != "success":
        raise AssertionError(f"{expr}: {answer}")
    result = answer["data"]["result"]
    return sum(float(item["value"][1]) for item in result) if result else None


async def _settled(
    http: aiohttp.ClientSession, prom: Prometheus, expected: dict[str, float]
) -> dict[str, float | None]:
    """Poll every panel until all show the ledger's figure (or time runs out); what they show."""
    sources = {e.source: e.expr for e in dashboard_expressions(SUBSTITUTIONS)}
    shown: dict[str, float | None] = {}
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WITHIN_S):
            while True:
                for source in expected:
                    shown[source] = await _number(http, prom, sources[source])
                if all(
                    shown[s] is not None and abs(shown[s] - w) < CENT  # type: ignore[operator]
                    for s, w in expected.items()
                ):
                    return shown
                await asyncio.sleep(0.5)
    return shown


async def test_finance_panels_equal_the_ledger(
    make_live: LiveStackFactory, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """After jobs in many new series and refusals, every finance spend panel equals the ledger."""
    stack = await make_live(
        watcher={"enabled": True, "tick_seconds": 0.2},
        identity={"teams": list(TEAMS), "projects": list(PROJECTS)},
    )
    assert stack.running.admin_port is not None
    with prometheus_scraping(stack.running.admin_port, tmp_path) as prom:
        await wait_until(http, prom, f'up{{job="{JOB}"}} == 1', 30.0)
        jobs = await _workload(http, stack)
        now = time.time()
        day_start, _ = window_bounds("day", now)
        month_start, _ = window_bounds("month", now)
        store = stack.store
        day = await store.spend_summary(day_start, now + 60, ["team"])
        month = await store.spend_summary(month_start, now + 60, [])
        everything = await store.spend_summary(0, now + 60, [])
        refused_day = await store.refusal_summary(day_start, now + 60)
        refused_month = await store.refusal_summary(month_start, now + 60)
        assert sum(r.jobs for r in everything) == jobs
        ledger_day = sample(sum(r.final_cost_micros for r in day))
        saved_day = sample(sum(r.avoided_micros for r in refused_day))
        assert ledger_day > 0
        assert saved_day > 0
        groups = await store.spend_summary(0, now + 60, ["team", "project", "model"])
        top10 = sorted((r.final_cost_micros for r in groups), reverse=True)[:10]
        by_team = {
            ("other" if r.team not in TEAMS else r.team): sample(r.final_cost_micros) for r in day
        }
        expected = {
            "finance.json: Spend today [A]": ledger_day,
            "finance.json: Spend month to date [A]": sample(
                sum(r.final_cost_micros for r in month)
            ),
            "finance.json: Spend in range [A]": sample(
                sum(r.final_cost_micros for r in everything)
            ),
            "finance.json: Saved by refused inputs today [A]": saved_day,
            "finance.json: Saved by refused inputs month to date [A]": sample(
                sum(r.avoided_micros for r in refused_month)
            ),
            "finance.json: Spend today by team [A]": ledger_day,
            "finance.json: Spend today by project [A]": ledger_day,
            "finance.json: Spend today by model [A]": ledger_day,
            "finance.json: Top cost drivers [A]": sample(sum(top10)),
            "finance.json: Savings from refused inputs today by reason [A]": saved_day,
        }
        shown = await _settled(http, prom, expected)
        wrong = {
            s: (shown.get(s), round(w, 6))
            for s, w in expected.items()
            if shown.get(s) is None or abs(shown[s] - w) >= CENT  # type: ignore[operator]
        }
        assert wrong == {}, f"panel: (shown, ledger) {wrong}"
        print(f"{jobs} jobs; panels = ledger: {shown}")
        teams = await query(
            http,
            prom,
            "sum by (team) (max by (team, project, model) "
            '(modellix_proxy_ledger_spend_usd{window="day"}))',
        )
        shown_by_team = {
            item["metric"]["team"]: float(item["value"][1]) for item in teams["data"]["result"]
        }
        assert shown_by_team.keys() == by_team.keys()
        for team, want in by_team.items():
            assert abs(shown_by_team[team] - want) < CENT, (team, shown_by_team[team], want)
