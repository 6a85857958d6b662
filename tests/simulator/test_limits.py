"""Team limits: requests per minute with X-RateLimit headers, funding tiers, Kling's own limit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from proxy.simulator import ManualClock, Simulator, SimulatorConfig
from proxy.simulator.config import DEFAULT_TIERS, Tier
from proxy.simulator.limits import tier_index
from proxy.simulator.server import build_parser, config_from_args
from tests.simulator.conftest import HAILUO, Client, MakeClient, submit

SimClient = tuple[Simulator, Client]
KLING = "/api/v1/kling/kling-v3-t2v"


async def test_default_limits_send_no_rate_headers(sim_client: SimClient) -> None:
    """Without an RPM limit (the default) answers carry no X-RateLimit headers."""
    sim, client = sim_client
    response = await client.get("/api/v1/models")
    assert response.status == 200
    assert not any(h.lower().startswith("x-ratelimit") for h in response.headers)
    assert sim.limits("default").as_json() == {
        "tier": None,
        "concurrency": 3,
        "rpm": 0,
        "kling_rpm": 0,
    }


async def test_rpm_window_counts_down_then_refuses_until_the_next_minute(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """Each answer reports limit, remaining and the minute's end; over the limit is 429."""
    sim, client = await make_client(rpm_limit=3)
    reset = str((int(clock.now) // 60 + 1) * 60)
    remaining = []
    for path in ("/api/v1/models", "/api/v1/team/balance", "/api/v1/tasks/nope"):
        response = await client.get(path)
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Reset"] == reset
        remaining.append(response.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    refused = await client.get("/api/v1/models")
    assert refused.status == 429
    assert await refused.json() == {
        "code": 429,
        "message": "Rate limit exceeded: 3 requests per minute",
    }
    assert (refused.headers["X-RateLimit-Remaining"], refused.headers["X-RateLimit-Reset"]) == (
        "0",
        reset,
    )
    assert sim.counters.rate_limit_refusals == 1
    clock.now = float(reset)
    again = await client.get("/api/v1/models")
    assert (again.status, again.headers["X-RateLimit-Remaining"]) == (200, "2")


async def test_windows_are_per_team(make_client: MakeClient) -> None:
    """One team using up its window does not limit another."""
    _, client = await make_client(rpm_limit=1, api_keys={"sk-test": "a", "sk-b": "b"})
    assert (await client.get("/api/v1/models")).status == 200
    assert (await client.get("/api/v1/models")).status == 429
    other = await client.get("/api/v1/models", headers={"Authorization": "Bearer sk-b"})
    assert other.status == 200


async def test_validate_is_not_limited(make_client: MakeClient) -> None:
    """apikey/validate needs no team, so it is neither counted nor refused."""
    _, client = await make_client(rpm_limit=1)
    for _ in range(3):
        response = await client.get("/api/v1/apikey/validate")
        assert response.status == 200
        assert "X-RateLimit-Limit" not in response.headers


def test_tier_follows_top_ups() -> None:
    """Below $10 tier 0 (2 / 100), from $1,000 the top tier (100 / 1,000)."""
    assert [tier_index(DEFAULT_TIERS, Decimal(usd)) for usd in (0, 9.99, 10, 999, 1000, 10**6)] == [
        0,
        0,
        1,
        4,
        5,
        5,
    ]
    assert (DEFAULT_TIERS[0].concurrency, DEFAULT_TIERS[0].rpm) == (2, 100)
    assert (DEFAULT_TIERS[-1].concurrency, DEFAULT_TIERS[-1].rpm) == (100, 1000)


async def test_auto_tier_rises_with_a_top_up(make_client: MakeClient) -> None:
    """A team with $5 of top-ups runs 2 tasks; topped up to $10 it runs a third at once."""
    sim, client = await make_client(tier="auto", topups_usd={"default": Decimal(5)})
    for _ in range(2):
        await submit(client, {"prompt": "x"})
    refused = await client.post(HAILUO, json={"prompt": "x"})
    assert refused.status == 429
    assert (await refused.json())["message"] == (
        "Rate limit exceeded: concurrent task limit of 2 reached"
    )
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    topped = await client.post("/_sim/topup", json={"team": "default", "usd": 5})
    assert (await topped.json())["data"]["limits"] == {
        "tier": 1,
        "concurrency": 10,
        "rpm": 100,
        "kling_rpm": 100,
    }
    response = await client.post(HAILUO, json={"prompt": "x"})
    assert response.status == 200
    assert response.headers["X-RateLimit-Limit"] == "100"
    assert sim.balance_usd() == Decimal(105)
    state = await (await client.get("/_sim/state")).json()
    assert state["limits"]["default"]["tier"] == 1
    for bad in ({"usd": -1}, {"usd": "lots"}, {"team": "default"}, {"usd": "NaN"}):
        assert (await client.post("/_sim/topup", json=bad)).status == 400, bad
    assert sim.balance_usd() == Decimal(105)


async def test_explicit_limits_override_the_tier(make_client: MakeClient) -> None:
    """A fixed tier with an explicit ``rpm_limit``: the tier's concurrency, the explicit RPM."""
    sim, _ = await make_client(tier=0, rpm_limit=5)
    assert sim.limits("default").as_json() == {
        "tier": 0,
        "concurrency": 2,
        "rpm": 5,
        "kling_rpm": 100,
    }


async def test_kling_has_its_own_window(make_client: MakeClient) -> None:
    """Kling submits meet their own per-minute limit; other models are not held by it."""
    sim, client = await make_client(tier=5, kling_rpm_limit=2)
    for remaining in ("1", "0"):
        response = await client.post(KLING, json={"prompt": "x"})
        assert response.status == 200
        assert (
            response.headers["X-RateLimit-Limit"],
            response.headers["X-RateLimit-Remaining"],
        ) == (
            "2",
            remaining,
        )
    refused = await client.post(KLING, json={"prompt": "x"})
    assert refused.status == 429
    assert (await refused.json())["message"] == (
        "Rate limit exceeded: Kling endpoints allow 2 requests per minute"
    )
    assert (await client.post(HAILUO, json={"prompt": "x"})).status == 200
    assert sim.counters.tasks_created == 3


def test_tier_configuration_is_checked() -> None:
    """Tiers must start at $0 and rise; a tier index must exist."""
    with pytest.raises(ValidationError):
        SimulatorConfig(tier=6)
    with pytest.raises(ValidationError):
        SimulatorConfig(tiers=(Tier(min_topup_usd=Decimal(5), concurrency=1, rpm=1),))
    with pytest.raises(ValidationError):
        SimulatorConfig(tiers=(DEFAULT_TIERS[1], DEFAULT_TIERS[0]))


def test_cli_options_set_the_limits() -> None:
    """``--tier --concurrency --rpm --kling-rpm --no-billing`` reach the configuration."""
    argv = ["--tier", "auto", "--concurrency", "7", "--rpm", "50", "--kling-rpm", "9"]
    config = config_from_args(build_parser().parse_args([*argv, "--no-billing"]))
    assert (config.tier, config.concurrency_limit, config.rpm_limit, config.kling_rpm_limit) == (
        "auto",
        7,
        50,
        9,
    )
    assert config.report_billing is False
    plain = config_from_args(build_parser().parse_args(["--tier", "2"]))
    assert (plain.tier, plain.report_billing) == (2, True)
    assert Simulator(plain).limits("x").as_json()["concurrency"] == 20
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--tier", "top"])
