"""Videos and the admission queue: beyond the team's upstream concurrency a create is queued
(the video answers ``queued`` at once), a queued video can be cancelled with ``DELETE`` and
nothing is bought, and the others are sent as slots free and complete."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from openai import AsyncOpenAI, NotFoundError

from proxy.simulator import SimulatorConfig
from tests.e2e.admission_support import UPSTREAM_KEY, virtual_key
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


async def test_queued_videos_wait_cancel_and_complete(make_stack: Any) -> None:
    """One slot, three videos: the first runs, two are queued; one of those is cancelled
    (404 after), the other is sent when the first ends; two upstream tasks in all."""
    config = SimulatorConfig.fast(
        concurrency_limit=3,
        processing_seconds=(1.0, 1.0),
        api_keys={UPSTREAM_KEY: "default"},
        initial_balance_usd=Decimal(1000),
    )
    stack: Stack = await make_stack(
        config,
        keys={"mode": "virtual", "cache_seconds": 0.1},
        upstream={"api_key": UPSTREAM_KEY},
        admission={"enabled": True, "concurrency": 1, "tick_seconds": 0.05},
        watcher={"enabled": True, "first_check_seconds": 0.1, "base_delay_seconds": 0.1,
                 "max_delay_seconds": 0.3, "tick_seconds": 0.05},
    )  # fmt: skip
    store = stack.runtime.store
    assert store is not None
    _, token = await virtual_key(store, team="studio")
    async with AsyncOpenAI(
        base_url=f"{stack.proxy_url}/v1", api_key=token, max_retries=0
    ) as client:
        made = [
            await client.videos.create(model="kling-v3", prompt=f"shot {i}", seconds="8")
            for i in range(3)
        ]
        assert [v.status for v in made] == ["queued"] * 3
        assert await store.job_by_ref(made[0].id) is not None  # sent at once
        assert await store.job_by_ref(made[2].id) is None  # held by the queue
        waiting = await client.videos.retrieve(made[2].id)
        assert (waiting.status, waiting.progress) == ("queued", 0)
        deleted = await client.videos.delete(made[2].id)
        assert deleted.deleted
        with pytest.raises(NotFoundError):
            await client.videos.retrieve(made[2].id)
        done = [await client.videos.poll(v.id, poll_interval_ms=50) for v in made[:2]]
    assert [v.status for v in done] == ["completed", "completed"]
    assert stack.sim.counters.tasks_created == 2
    assert await store.open_reservations() == []  # the cancelled video's money came back


async def test_queued_videos_are_listed_in_place_until_and_after_they_are_sent(
    make_stack: Any,
) -> None:
    """One slot, four videos: the list shows all four (the three the queue holds as
    ``queued``), newest first or oldest first, paging after a queued video; another key
    sees none of them; once all are sent and done, the same ids in the same order, once."""
    stack = await _one_slot(make_stack, seconds=1.5)  # the first outlasts the four POSTs
    store = stack.runtime.store
    assert store is not None
    _, token = await virtual_key(store, team="studio")
    _, other = await virtual_key(store, team="studio")
    async with (
        AsyncOpenAI(base_url=f"{stack.proxy_url}/v1", api_key=token, max_retries=0) as client,
        AsyncOpenAI(base_url=f"{stack.proxy_url}/v1", api_key=other, max_retries=0) as stranger,
    ):
        made = [
            (await client.videos.create(model="kling-v3", prompt=f"shot {i}", seconds="8")).id
            for i in range(4)
        ]
        assert await store.job_by_ref(made[3]) is None  # still held by the queue
        newest = [v async for v in client.videos.list(limit=2)]
        assert [v.id for v in newest] == made[::-1]
        assert [v.status for v in newest[:3]] == ["queued"] * 3
        oldest = [v.id async for v in client.videos.list(limit=2, order="asc")]
        assert oldest == made
        after = await client.videos.list(after=made[2], limit=1)
        assert ([v.id for v in after.data], after.has_more) == ([made[1]], True)
        assert [v async for v in stranger.videos.list()] == []
        done = [await client.videos.poll(v, poll_interval_ms=50) for v in made]
        assert [v.status for v in done] == ["completed"] * 4
        listed = [v async for v in client.videos.list(limit=3)]
    assert [(v.id, v.status) for v in listed] == [(v, "completed") for v in made[::-1]]
    assert stack.sim.counters.tasks_created == 4


async def _one_slot(make_stack: Any, seconds: float) -> Stack:
    """A stack whose team has one upstream slot, tasks of ``seconds``, and a watcher that
    settles jobs quickly."""
    config = SimulatorConfig.fast(
        concurrency_limit=3,
        processing_seconds=(seconds, seconds),
        api_keys={UPSTREAM_KEY: "default"},
        initial_balance_usd=Decimal(1000),
    )
    stack: Stack = await make_stack(
        config,
        keys={"mode": "virtual", "cache_seconds": 0.1},
        upstream={"api_key": UPSTREAM_KEY},
        admission={"enabled": True, "concurrency": 1, "tick_seconds": 0.05},
        watcher={"enabled": True, "first_check_seconds": 0.1, "base_delay_seconds": 0.1,
                 "max_delay_seconds": 0.3, "tick_seconds": 0.05},
    )  # fmt: skip
    return stack


async def test_a_remix_waits_in_the_queue_like_any_create(make_stack: Any) -> None:
    """With the one slot busy, a remix is queued: retrieve and list show it ``queued`` and
    naming its source before it is sent, and after, under the same id, completed."""
    stack = await _one_slot(make_stack, seconds=3.0)  # the busy video outlasts the remix's POST
    stack.sim.config = stack.sim.config.model_copy(update={"file_origin": stack.sim_url})
    store = stack.runtime.store
    assert store is not None
    _, token = await virtual_key(store, team="studio")
    async with AsyncOpenAI(
        base_url=f"{stack.proxy_url}/v1", api_key=token, max_retries=0
    ) as client:
        source = await client.videos.create(model="seedance-2.0", prompt="a kite")
        source = await client.videos.poll(source.id, poll_interval_ms=50)
        assert source.status == "completed"
        busy = await client.videos.create(model="kling-v3", prompt="holds the slot", seconds="8")
        remix = await client.videos.remix(source.id, prompt="the kite at night")
        assert await store.job_by_ref(remix.id) is None  # held by the queue
        held = await client.videos.retrieve(remix.id)
        assert (held.status, held.remixed_from_video_id) == ("queued", source.id)
        listed = [(v.id, v.remixed_from_video_id) async for v in client.videos.list()]
        assert listed == [(remix.id, source.id), (busy.id, None), (source.id, None)]
        done = await client.videos.poll(remix.id, poll_interval_ms=50)
    assert (done.status, done.remixed_from_video_id) == ("completed", source.id)
    job = await store.job_by_ref(remix.id)
    assert job is not None
    assert job.pinned_slug == "bytedance/seedance-2.0-v2v"
