"""Task lifecycle: pending, processing, then success or failed, one way, then expiry."""

from __future__ import annotations

from proxy.simulator import ManualClock, Simulator
from tests.simulator.conftest import Client, MakeClient, poll, submit

SimClient = tuple[Simulator, Client]


async def test_lifecycle_runs_in_order_and_ends_with_resources(
    sim_client: SimClient, clock: ManualClock
) -> None:
    """A task is pending, then processing, then success with one 1366x768 mp4 (768P, 16:9)."""
    sim, client = sim_client
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    task = sim.tasks[task_id]
    seen = []
    for when in (task.created_at, task.processing_at, task.done_at):
        clock.now = when
        status, answer = await poll(client, task_id)
        assert status == 200
        seen.append(answer["data"]["status"])
    assert seen == ["pending", "processing", "success"]
    assert answer["data"]["result"] == {
        "resources": [
            {
                "type": "video",
                "url": f"https://file.modellix.ai/sim/{task_id}.mp4",
                "format": "mp4",
                "width": 1366,
                "height": 768,
            }
        ]
    }
    assert answer["data"]["model_id"] == "minimax-hailuo-2.3-t2v"
    assert isinstance(answer["data"]["duration"], int)


async def test_status_never_goes_back(sim_client: SimClient, clock: ManualClock) -> None:
    """Once success was reported, moving the clock back does not report an earlier status."""
    sim, client = sim_client
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    start = clock.now
    clock.advance(60)
    assert (await poll(client, task_id))[1]["data"]["status"] == "success"
    clock.now = start
    assert (await poll(client, task_id))[1]["data"]["status"] == "success"
    assert sim.status(task_id) == "success"


async def test_image_models_yield_n_images(sim_client: SimClient, clock: ManualClock) -> None:
    """An image model returns as many image resources as ``n`` asks for."""
    _, client = sim_client
    answer = await submit(client, {"prompt": "x", "n": 3}, "/api/v1/alibaba/wan2.7-image")
    clock.advance(60)
    _, result = await poll(client, answer["data"]["task_id"])
    resources = result["data"]["result"]["resources"]
    assert [r["type"] for r in resources] == ["image"] * 3
    assert len({r["url"] for r in resources}) == 3


async def test_failed_task_payload(sim_client: SimClient, clock: ManualClock) -> None:
    """A failed task answers code 0, the reason in ``message`` and status failed."""
    _, client = sim_client
    answer = await submit(client, {"prompt": "x [sim:task_failed]"})
    task_id = answer["data"]["task_id"]
    clock.advance(60)
    status, result = await poll(client, task_id)
    assert status == 200
    assert result["code"] == 0
    assert result["message"].startswith("Generation failed: ")
    assert result["data"] == {"status": "failed", "task_id": task_id}


async def test_unknown_task_is_404(sim_client: SimClient) -> None:
    """Polling an id that was never issued answers 404 ``Task not found``."""
    _, client = sim_client
    status, answer = await poll(client, "task-nope")
    assert (status, answer) == (404, {"code": 404, "message": "Task not found: task-nope"})


async def test_tasks_expire_after_retention(make_client: MakeClient, clock: ManualClock) -> None:
    """A task answers 404 once the retention period after it finished has passed, still billed."""
    sim, client = await make_client(retention_seconds=3600)
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    clock.now = sim.tasks[task_id].done_at
    status, answer = await poll(client, task_id)
    assert status == 200
    assert answer["data"]["result_expires_at"] == round((clock.now + 3600) * 1000)
    clock.advance(3599)
    assert (await poll(client, task_id))[0] == 200
    clock.advance(1)
    assert (await poll(client, task_id))[0] == 404
    assert [r.task_id for r in sim.billing_records()] == [task_id]


async def test_expire_makes_a_task_404(sim_client: SimClient) -> None:
    """``Simulator.expire`` makes a task answer 404 at once."""
    sim, client = sim_client
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    sim.expire(task_id)
    assert (await poll(client, task_id))[0] == 404
