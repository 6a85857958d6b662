"""FOCUS export: one row per terminal job, and every cost column sums to the ledger."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from proxy.admin import create_admin_app
from proxy.config import Settings
from proxy.governance.focus import COLUMNS, COST_COLUMNS
from proxy.money import exact
from tests.e2e.conftest import ServerFactory, Stack
from tests.e2e.test_client_flow import HAILUO
from tests.e2e.test_watcher import FAST_WATCHER, _until_terminal

ADMIN = Settings.model_validate({"admin": {"token": "admin-token"}})


async def test_focus_rows_are_one_per_job_and_cost_columns_sum_to_the_ledger(
    make_stack: Any, http: aiohttp.ClientSession, aiohttp_server: ServerFactory
) -> None:
    """The FOCUS CSV and JSON have a row per terminal job whose costs add up to the ledger."""
    stack: Stack = await make_stack(**FAST_WATCHER)
    ids = []
    for i in range(5):
        body = {**HAILUO, "prompt": f"focus {i}" + (" [sim:task_failed]" if i == 4 else "")}
        headers = {"X-Modellix-Team": "studio", "X-Modellix-Project": "trailer"}
        async with http.post(
            f"{stack.proxy_url}/api/v1/minimax/hailuo", json=body, headers=headers
        ) as resp:
            assert resp.status == 200
            ids.append((await resp.json())["data"]["task_id"])
    await _until_terminal(stack, ids)
    store = stack.runtime.store
    assert store is not None
    ledger = sum(r.final_cost_micros for r in await store.spend_summary(0, 4e9))
    assert ledger == 4 * 324_000
    assert stack.sim.billed_total_micros() == ledger
    admin: TestServer = await aiohttp_server(create_admin_app(ADMIN, stack.metrics, stack.runtime))
    base = str(admin.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer admin-token"}) as plain:
        async with plain.get(f"{base}/admin/export/focus", params={"since": "0"}) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/csv"
            text = await resp.text()
        async with plain.get(f"{base}/admin/report?format=focus&since=0") as resp:
            assert await resp.text() == text
        async with plain.get(f"{base}/admin/export/focus?format=json&since=0") as resp:
            doc = json.loads(await resp.text())
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    rows = list(reader)
    assert sorted(r["ResourceId"] for r in rows) == sorted(ids)
    for column in COST_COLUMNS:
        assert sum(Decimal(r[column]) for r in rows) == Decimal(exact(ledger)), column
        assert sum(Decimal(r[column]) for r in doc["rows"]) == Decimal(exact(ledger)), column
    success = next(r for r in rows if r["x_JobStatus"] == "success")
    assert success["BilledCost"] == "0.324000"
    assert success["SkuId"] == "minimax/hailuo-02-t2v"
    assert (success["ChargeCategory"], success["BillingCurrency"]) == ("Usage", "USD")
    assert success["SubAccountId"] == "studio"
    assert json.loads(success["Tags"])["project"] == "trailer"
    assert success["ChargePeriodStart"] < success["ChargePeriodEnd"]
    failed = next(r for r in rows if r["x_JobStatus"] == "failed")
    assert failed["BilledCost"] == "0.000000"
    assert doc["focus_version"] == "1.1"
