"""The simulator-only /_sim endpoints and the standalone server."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest

from proxy.simulator import ManualClock, Simulator, SimulatorConfig, running, serve
from proxy.simulator.server import RunningSimulator, build_parser, config_from_args
from tests.simulator.conftest import AUTH, HAILUO, Client, poll, submit

SimClient = tuple[Simulator, Client]


async def test_state_and_billing_report_counters_and_money(
    sim_client: SimClient, clock: ManualClock
) -> None:
    """/_sim/state counts upstream traffic (not itself) and /_sim/billing lists charges."""
    _, client = sim_client
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    clock.advance(60)
    await poll(client, task_id)
    state = await (await client.get("/_sim/state")).json()
    assert state["counters"]["requests"]["submit"] == 1
    assert state["counters"]["requests"]["poll"] == 1
    assert state["counters"]["total_requests"] == 2
    assert state["tasks"]["success"] == 1
    assert state["billed_total_micros"] == 324_000
    assert state["balance"] == 99.676
    billing = await (await client.get("/_sim/billing")).json()
    assert billing["total_micros"] == 324_000
    assert billing["records"][0]["task_id"] == task_id


async def test_request_log_redacts_authorization(sim_client: SimClient) -> None:
    """The request log records method and path with the Authorization value redacted."""
    sim, client = sim_client
    await client.get("/api/v1/models")
    logged = (await (await client.get("/_sim/requests")).json())["requests"]
    assert [(r["method"], r["path"], r["route"]) for r in logged] == [
        ("GET", "/api/v1/models", "models")
    ]
    assert logged[0]["headers"]["Authorization"] == "Bearer ***"
    assert sim.requests(route="models", method="GET")[0].status == 200


async def test_faults_can_be_queued_over_http(sim_client: SimClient) -> None:
    """POST /_sim/faults queues a burst; a bad name is refused 400."""
    _, client = sim_client
    queued = await client.post("/_sim/faults", json={"name": "500", "count": 1, "route": "submit"})
    assert (await queued.json())["queued"] == [{"name": "500", "remaining": 1, "route": "submit"}]
    assert (await client.post(HAILUO, json={"prompt": "x"})).status == 500
    assert (await client.post(HAILUO, json={"prompt": "x"})).status == 200
    bad = await client.post("/_sim/faults", json={"name": "nope"})
    assert bad.status == 400


async def test_reset_forgets_everything(sim_client: SimClient) -> None:
    """POST /_sim/reset clears tasks, counters and the request log."""
    sim, client = sim_client
    await submit(client, {"prompt": "x"})
    await client.post("/_sim/reset")
    assert sim.tasks == {}
    assert sim.counters.total_requests == 0
    assert sim.request_log == []


async def test_running_serves_on_a_free_port() -> None:
    """``running`` serves a simulator on loopback and reports its URL."""
    async with (
        running(SimulatorConfig.fast()) as handle,
        aiohttp.ClientSession(handle.url, headers=AUTH) as session,
    ):
        async with session.get("/api/v1/apikey/validate") as response:
            assert (await response.json())["data"]["is_valid"] is True
        assert handle.sim.counters.requests["validate"] == 1


async def test_serve_runs_until_cancelled() -> None:
    """``serve`` answers requests and shuts down cleanly when cancelled."""
    ready: asyncio.Queue[RunningSimulator] = asyncio.Queue()
    async with asyncio.TaskGroup() as group:
        server = group.create_task(
            serve(SimulatorConfig.fast(), "127.0.0.1", 0, on_ready=ready.put_nowait)
        )
        handle = await asyncio.wait_for(ready.get(), timeout=5)
        async with (
            aiohttp.ClientSession(handle.url, headers=AUTH) as session,
            session.get("/api/v1/models") as response,
        ):
            assert response.status == 200
        server.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await server
    assert server.cancelled()


def test_cli_options_build_a_preset_config() -> None:
    """``--preset realistic --seed 3`` builds the realistic preset with that seed."""
    args = build_parser().parse_args(["--preset", "realistic", "--seed", "3", "--port", "0"])
    config = config_from_args(args)
    assert (config.seed, config.pending_seconds, args.port) == (3, 20.0, 0)
    with pytest.raises(ValueError, match="unknown simulator preset"):
        SimulatorConfig.preset("warp")
