"""Fault injection: by header, by prompt marker, by queue, and by seeded rate."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from proxy.simulator import ManualClock, Simulator
from tests.simulator.conftest import HAILUO, Client, MakeClient, poll, submit

SimClient = tuple[Simulator, Client]


@pytest.mark.parametrize(
    ("fault", "status", "category"),
    [
        ("500", 500, "Internal error: "),
        ("502", 502, "Bad gateway: "),
        ("503", 503, "Service unavailable: "),
        ("429", 429, "Rate limit exceeded: "),
        ("content_policy_submit", 400, "Content policy violation: "),
    ],
)
async def test_status_faults_answer_in_the_envelope(
    sim_client: SimClient, fault: str, status: int, category: str
) -> None:
    """A header-selected status fault answers that status in the envelope and creates nothing."""
    sim, client = sim_client
    response = await client.post(HAILUO, json={"prompt": "x"}, headers={"X-Simulator-Fault": fault})
    assert response.status == status
    body = await response.json()
    assert body["code"] == status
    assert body["message"].startswith(category)
    assert sim.counters.tasks_created == 0
    assert sim.request_log[-1].status == status
    if status == 429:
        assert int(response.headers["X-RateLimit-Reset"]) % 60 == 0
        assert response.headers["X-RateLimit-Remaining"] == "0"


async def test_reset_before_create_drops_the_connection_and_creates_nothing(
    sim_client: SimClient, caplog: pytest.LogCaptureFixture
) -> None:
    """reset_before_create is a connection error for the client and leaves no task."""
    sim, client = sim_client
    caplog.set_level(logging.DEBUG)
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.post(HAILUO, json={"prompt": "x [sim:reset_before_create]"})
    assert sim.counters.submits_received == 1
    assert sim.counters.tasks_created == 0
    assert sim.request_log[-1].status is None
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_reset_after_create_leaves_a_billable_task(
    sim_client: SimClient, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """reset_after_create is a connection error, yet the task exists and is billed later."""
    sim, client = sim_client
    caplog.set_level(logging.DEBUG)
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.post(
            HAILUO, json={"prompt": "x"}, headers={"X-Simulator-Fault": "reset_after_create"}
        )
    assert sim.counters.tasks_created == 1
    clock.advance(60)
    assert sim.billed_total_micros() == 324_000
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_reset_on_poll_is_a_connection_error(sim_client: SimClient) -> None:
    """A queued reset on the poll route drops that poll's connection."""
    sim, client = sim_client
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    sim.inject("reset_before_create", route="poll")
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.get(f"/api/v1/tasks/{task_id}")
    assert (await poll(client, task_id))[0] == 200


async def test_malformed_answers_200_with_non_json(sim_client: SimClient) -> None:
    """malformed answers 200 with a body that does not parse, after creating the task."""
    sim, client = sim_client
    response = await client.post(
        HAILUO, json={"prompt": "x"}, headers={"X-Simulator-Fault": "malformed"}
    )
    assert response.status == 200
    with pytest.raises(json.JSONDecodeError):
        await response.json()
    assert sim.counters.tasks_created == 1


async def test_stall_holds_the_answer_until_shutdown(sim_client: SimClient) -> None:
    """A stalled submit creates its task, holds the answer, and is released by shutdown."""
    sim, client = sim_client

    async def attempt() -> int | Exception:
        try:
            response = await client.post(
                HAILUO, json={"prompt": "x"}, headers={"X-Simulator-Fault": "stall"}
            )
        except aiohttp.ClientConnectionError as exc:
            return exc
        return response.status

    async with asyncio.TaskGroup() as group:
        pending = group.create_task(attempt())
        async with asyncio.timeout(5):
            await sim.wait_until(lambda: sim.counters.tasks_created == 1)
        assert not pending.done()
        await client.server.close()
    assert isinstance(pending.result(), aiohttp.ClientConnectionError)


async def test_stall_then_answers_normally(make_client: MakeClient) -> None:
    """After stall_seconds the stalled request gets its ordinary answer."""
    sim, client = await make_client(stall_seconds=0.01)
    sim.inject("stall", route="submit")
    answer = await submit(client, {"prompt": "x"})
    assert answer["data"]["status"] == "pending"


async def test_content_policy_fails_the_task(sim_client: SimClient, clock: ManualClock) -> None:
    """content_policy makes the task end failed with a ``Content policy violation:`` message."""
    sim, client = sim_client
    sim.inject("content_policy")
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    clock.advance(60)
    _, answer = await poll(client, task_id)
    assert answer["data"]["status"] == "failed"
    assert answer["message"].startswith("Content policy violation: ")


async def test_injected_burst_hits_only_its_route(sim_client: SimClient) -> None:
    """inject(503, count=2, route=submit) fails the next two submits and no poll."""
    sim, client = sim_client
    first = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    sim.inject("503", count=2, route="submit")
    assert (await poll(client, first))[0] == 200
    statuses = [(await client.post(HAILUO, json={"prompt": "x"})).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert sim.faults.queue == []


async def test_task_faults_are_ignored_on_poll(sim_client: SimClient) -> None:
    """A task-outcome fault queued for any route waits for a submit."""
    sim, client = sim_client
    sim.inject("task_failed")
    assert (await poll(client, "task-x"))[0] == 404
    assert len(sim.faults.queue) == 1
    await submit(client, {"prompt": "x"})
    assert sim.faults.queue == []
    assert next(iter(sim.tasks.values())).outcome == "failed"


async def test_unknown_fault_names_are_refused(sim_client: SimClient) -> None:
    """inject refuses an unknown fault name; an unknown header is ignored."""
    sim, client = sim_client
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("explode")
    response = await client.post(
        HAILUO, json={"prompt": "x"}, headers={"X-Simulator-Fault": "explode"}
    )
    assert response.status == 200


async def _run_with_rates(make_client: MakeClient, seed: int) -> list[tuple[int, str]]:
    """Forty submits under seeded rates: (status, task id or message), then task outcomes."""
    rates = {"rate_500": 0.2, "rate_503": 0.1, "rate_429": 0.1, "rate_malformed": 0.1}
    sim, client = await make_client(seed=seed, concurrency_limit=0, **rates, rate_task_failed=0.3)
    outcomes = []
    for _ in range(40):
        response = await client.post(HAILUO, json={"prompt": "x"})
        text = await response.text()
        try:
            body = json.loads(text)
        except ValueError:
            outcomes.append((response.status, "malformed"))
            continue
        outcomes.append((response.status, body.get("data", {}).get("task_id", body["message"])))
    outcomes += [(0, task.outcome) for task in sim.tasks.values()]
    return outcomes


async def test_seeded_rates_are_deterministic(make_client: MakeClient) -> None:
    """The same seed gives the same faults, ids and outcomes; another seed does not."""
    first = await _run_with_rates(make_client, seed=7)
    second = await _run_with_rates(make_client, seed=7)
    other = await _run_with_rates(make_client, seed=8)
    assert first == second
    assert first != other
    statuses = {status for status, _ in first}
    assert {0, 200, 500, 503, 429} <= statuses


async def test_poll_faults_leave_the_task_alone(sim_client: SimClient) -> None:
    """Malformed and 500 faults on polls answer garbage or 500 and the next poll is fine."""
    sim, client = sim_client
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    sim.inject("malformed", route="poll")
    sim.inject("500", route="poll")
    first = await client.get(f"/api/v1/tasks/{task_id}")
    assert first.status == 200
    with pytest.raises(json.JSONDecodeError):
        await first.json()
    assert (await poll(client, task_id))[0] == 500
    assert (await poll(client, task_id))[0] == 200
    assert [r.fault for r in sim.requests(route="poll")] == ["malformed", "500", None]
