"""The ``cancelled`` terminal status: by rate, by marker, by the control API; never billed."""

from __future__ import annotations

from decimal import Decimal

from proxy.simulator import ManualClock, Simulator
from tests.simulator.conftest import HAILUO, Client, MakeClient, poll, submit

SimClient = tuple[Simulator, Client]


async def test_cancelled_by_rate_is_terminal_and_free(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """With ``rate_task_cancelled`` 1 every task ends cancelled, unbilled even with bill_failed."""
    sim, client = await make_client(rate_task_cancelled=1.0, bill_failed=True)
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    clock.advance(60)
    status, answer = await poll(client, task_id)
    assert status == 200
    assert answer == {
        "code": 0,
        "message": "Task cancelled: the task was cancelled before it finished",
        "data": {"status": "cancelled", "task_id": task_id},
    }
    assert sim.billed_total_micros() == 0
    assert sim.balance_usd() == Decimal(100)
    state = await (await client.get("/_sim/state")).json()
    assert state["tasks"]["cancelled"] == 1


async def test_cancel_marker_in_the_prompt(sim_client: SimClient, clock: ManualClock) -> None:
    """``[sim:task_cancelled]`` in the prompt makes that one task end cancelled."""
    _, client = sim_client
    task_id = (await submit(client, {"prompt": "x [sim:task_cancelled]"}))["data"]["task_id"]
    clock.advance(60)
    assert (await poll(client, task_id))[1]["data"]["status"] == "cancelled"


async def test_control_cancel_ends_a_running_task_and_frees_its_money_and_slot(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """Cancelling a pending task ends it now, releases its hold and its concurrency slot."""
    sim, client = await make_client(initial_balance_usd=Decimal("0.5"), concurrency_limit=1)
    first = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    assert (await client.post(HAILUO, json={"prompt": "x"})).status == 429
    response = await client.post(f"/_sim/tasks/{first}/cancel")
    assert response.status == 200
    assert (await response.json())["data"] == {"status": "cancelled", "task_id": first}
    second = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    clock.advance(60)
    assert (await poll(client, first))[1]["data"]["status"] == "cancelled"
    assert (await poll(client, second))[1]["data"]["status"] == "success"
    assert [r.task_id for r in sim.billing_records()] == [second]
    assert sim.accounts.max_active("default") == 1


async def test_cancel_refuses_finished_and_unknown_tasks(
    sim_client: SimClient, clock: ManualClock
) -> None:
    """A finished task cannot be cancelled (409); an unknown one is 404."""
    _, client = sim_client
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    clock.advance(60)
    done = await client.post(f"/_sim/tasks/{task_id}/cancel")
    assert done.status == 409
    assert (await done.json())["message"] == f"Conflict: task {task_id} is already success"
    unknown = await client.post("/_sim/tasks/task-nope/cancel")
    assert unknown.status == 404
    assert (await poll(client, task_id))[1]["data"]["status"] == "success"
