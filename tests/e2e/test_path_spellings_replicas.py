"""The issue's "done when": three replicas on PostgreSQL, a hard global budget, and a burst of
submits in every path spelling; the upstream bills no more than the budget, and exactly the ledger.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from proxy.context import RouteKind
from proxy.routing import classify
from tests.e2e.test_client_flow import HAILUO
from tests.e2e.test_governance_replicas import (
    JOB,
    REPLICAS,
    ServerFactory,
    cluster,
    create_key,
    put_budget,
    settled,
    window_keys,
)
from tests.e2e.test_path_spellings import SLUG, SUBMIT, send
from tests.pathspellings import issue_spellings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
BURST = 120
LIMIT = 12_000_000  # $12: 37 jobs, fewer than the burst's well-formed submits
CANONICAL = {
    f"/api/v1/{SLUG}",
    f"/api/v1/{SLUG}/async",
    f"/api/v1/text-to-video/{SLUG}/async",
}


async def test_no_spelling_buys_past_a_hard_budget_on_three_replicas(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """120 racing submits, every spelling, three replicas, $12 budget: 37 jobs, billed = ledger."""
    async with cluster(aiohttp_server, tmp_path, virtual=True) as cl:
        await put_budget(cl, "paths", {"scope": "global", "window": "month", "limit_usd": "12"})
        keys = window_keys(["paths"])
        _, token = await create_key(cl, name="spellings", team="studio")
        spelled = issue_spellings(SUBMIT)
        targets = [spelled[i % len(spelled)] for i in range(BURST)]
        well_formed = sum(
            1
            for t in targets
            if (route := classify("POST", t)).kind is RouteKind.SUBMIT and route.slug == SLUG
        )
        fits = LIMIT // JOB
        assert well_formed > fits  # the burst really asks for more than the budget holds
        body = json.dumps(HAILUO).encode()
        async with asyncio.timeout(60):
            answers = await asyncio.gather(
                *(
                    send(cl.procs[i % REPLICAS].url, "POST", target, token, body)
                    for i, target in enumerate(targets)
                )
            )
        statuses = Counter(a.status for a in answers)
        assert statuses[200] == fits, statuses
        assert statuses[402] == well_formed - fits, statuses
        assert set(statuses) <= {200, 400, 402, 404}, statuses
        assert cl.sim.counters.tasks_created == fits
        submits = cl.sim.requests(route="submit")
        assert len(submits) == fits
        assert {r.path for r in submits} <= CANONICAL
        task_ids = [a.json()["data"]["task_id"] for a in answers if a.status == 200]
        await settled(cl.store, task_ids, keys)
        ledger = sum(
            row.final_cost_micros for row in await cl.store.spend_summary(0, time.time() + 60)
        )
        cl.sim.settle()
        billed = cl.sim.billed_total_micros()
        assert billed == ledger == fits * JOB
        assert billed <= LIMIT
