"""Keys, balance, billing and the team-wide concurrency limit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from proxy.simulator import ManualClock, Simulator
from tests.simulator.conftest import HAILUO, Client, MakeClient, poll, submit

SimClient = tuple[Simulator, Client]
HAILUO_6S_768P = 324_000  # 6 s x $0.054


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dTpw"}, {"Authorization": "Bearer "}, {"Authorization": "sk"}],
)
async def test_missing_or_malformed_auth_is_401(
    sim_client: SimClient, headers: dict[str, str]
) -> None:
    """Without a Bearer key every API route answers 401 ``Authentication failed: ...``."""
    _, client = sim_client
    for method, path in (("POST", HAILUO), ("GET", "/api/v1/tasks/x"), ("GET", "/api/v1/models")):
        response = await client.request(
            method, path, json={"prompt": "x"}, headers={"Authorization": "", **headers}
        )
        assert response.status == 401
        body = await response.json()
        assert body["code"] == 401
        assert body["message"].startswith("Authentication failed: ")


async def test_key_mapping_rejects_unknown_keys(make_client: MakeClient) -> None:
    """With an api_keys mapping, an unknown key is 401 and a known one bills its team."""
    sim, client = await make_client(api_keys={"sk-test": "acme"})
    other = await client.get("/api/v1/models", headers={"Authorization": "Bearer sk-other"})
    assert other.status == 401
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    assert sim.tasks[task_id].team == "acme"


async def test_validate_answers_200_either_way(make_client: MakeClient) -> None:
    """apikey/validate answers 200 with is_valid true or false, never 401."""
    _, client = await make_client(api_keys={"sk-test": "acme"})
    good = await client.get("/api/v1/apikey/validate")
    assert await good.json() == {"code": 0, "message": "success", "data": {"is_valid": True}}
    for auth in ("Bearer sk-other", ""):
        bad = await client.get("/api/v1/apikey/validate", headers={"Authorization": auth})
        assert bad.status == 200
        assert (await bad.json())["data"] == {"is_valid": False}


async def test_models_lists_every_slug(sim_client: SimClient) -> None:
    """GET /models answers a top-level ``models`` array with slug, type, docs and provider."""
    _, client = sim_client
    body = await (await client.get("/api/v1/models")).json()
    slugs = {m["slug"]: m for m in body["models"]}
    assert set(body) == {"models"}
    hailuo = slugs["minimax/hailuo-2.3-t2v"]
    assert hailuo["type"] == "text-to-video"
    assert hailuo["provider"] == "minimax"
    assert hailuo["docs_url"].startswith("https://docs.modellix.ai/")
    assert slugs["bytedance/seedream-4.5-t2i"]["type"] == "text-to-image"


async def test_balance_decreases_once_a_task_is_billed(
    sim_client: SimClient, clock: ManualClock
) -> None:
    """The balance drops by the task's price when it succeeds, exactly once."""
    sim, client = sim_client

    async def balance() -> float:
        body = await (await client.get("/api/v1/team/balance")).json()
        value = body["data"]["balance"]
        assert isinstance(value, float)
        return value

    assert await balance() == 100.0
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    assert await balance() == 100.0
    clock.advance(60)
    await poll(client, task_id)
    await poll(client, task_id)
    assert await balance() == 99.676
    records = sim.billing_records()
    assert len(records) == 1
    assert records[0].amount_micros == HAILUO_6S_768P
    assert records[0].billed_at == sim.tasks[task_id].done_at
    assert sim.billed_total_micros() == HAILUO_6S_768P


async def test_billing_totals_add_up_by_resolution(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """Billing records carry the list prices: 768P $0.054/s and 1080P $0.12/s."""
    sim, client = await make_client(concurrency_limit=0)
    await submit(client, {"prompt": "x", "duration": 10})
    await submit(client, {"prompt": "x", "resolution": "1080P"})
    await submit(client, {"prompt": "x", "resolution": "1080P", "duration": 6})
    clock.advance(60)
    amounts = sorted(r.amount_micros for r in sim.billing_records())
    assert amounts == [540_000, 720_000, 720_000]
    assert sim.billed_total_micros() == 1_980_000
    assert sim.balance_usd() == Decimal("98.02")


async def test_failed_tasks_are_not_billed_unless_configured(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """A failed task costs nothing by default and its price with ``bill_failed``."""
    for bill_failed, expected in ((False, 0), (True, HAILUO_6S_768P)):
        sim, client = await make_client(bill_failed=bill_failed)
        await submit(client, {"prompt": "[sim:task_failed]"})
        clock.advance(60)
        assert sim.billed_total_micros() == expected


async def test_low_balance_is_402(make_client: MakeClient, clock: ManualClock) -> None:
    """A submit costing more than the available balance answers 402 and creates nothing."""
    sim, client = await make_client(initial_balance_usd=Decimal("0.5"))
    await submit(client, {"prompt": "x"})
    response = await client.post(HAILUO, json={"prompt": "x"})
    assert response.status == 402
    body = await response.json()
    assert body["message"].startswith("Insufficient balance: ")
    clock.advance(60)
    assert sim.balance_micros() == 500_000 - HAILUO_6S_768P
    assert sim.counters.tasks_created == 1


async def test_concurrency_limit_is_429_with_reset_header(
    sim_client: SimClient, clock: ManualClock
) -> None:
    """A fourth concurrent task answers 429 with X-RateLimit-Reset at the next minute."""
    sim, client = sim_client
    for _ in range(3):
        await submit(client, {"prompt": "x"})
    response = await client.post(HAILUO, json={"prompt": "x"})
    assert response.status == 429
    assert (await response.json())["message"].startswith("Rate limit exceeded: ")
    reset = int(response.headers["X-RateLimit-Reset"])
    assert reset % 60 == 0
    assert 0 < reset - clock.now <= 60
    assert response.headers["X-RateLimit-Remaining"] == "0"
    clock.advance(60)
    await submit(client, {"prompt": "x"})
    assert sim.counters.tasks_created == 4
