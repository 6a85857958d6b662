"""Remix through the official OpenAI Python SDK: a completed Seedance video is remade by the
family's video-to-video model from its result URL and the new prompt, through the one submit
walk; a video not completed, or of a family without a v2v model, is a 400 before any cost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError, RateLimitError
from openai.types import Video

from proxy.simulator import SimulatorConfig
from proxy.stores.base import Store
from tests.e2e.conftest import Stack
from tests.e2e.test_governance import UPSTREAM_KEY, put_budget
from tests.openai_videos.test_virtual_keys import key, sdk

API_KEY = "sk-e2e-secret-key-123456"
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


@pytest.fixture
async def openai(stack: Stack) -> AsyncIterator[AsyncOpenAI]:
    """The SDK pointed at the proxy; the simulator serves its result files itself."""
    stack.sim.config = stack.sim.config.model_copy(update={"file_origin": stack.sim_url})
    async with AsyncOpenAI(
        base_url=f"{stack.proxy_url}/v1", api_key=API_KEY, max_retries=0
    ) as client:
        yield client


def store_of(stack: Stack) -> Store:
    store = stack.runtime.store
    assert store is not None
    return store


async def test_remix_remakes_a_completed_video_with_the_v2v_model(
    stack: Stack, openai: AsyncOpenAI
) -> None:
    """The remix is a Seedance 2.0 v2v submit of the source's result URL with the new prompt,
    keeping its seconds and size; it names its source, completes, and its final cost is the
    simulator's billing."""
    source = await openai.videos.create(
        model="seedance-2.0",
        prompt="a paper kite over a beach",
        seconds="6",  # type: ignore[arg-type]  # Seedance's 6 s: outside the SDK's literal set
        size="1280x720",
    )
    with pytest.raises(BadRequestError) as early:
        await openai.videos.remix(source.id, prompt="the kite at night")
    assert early.value.code == "video_not_completed"
    assert early.value.param == "video_id"
    done = await openai.videos.poll(source.id, poll_interval_ms=50)
    assert done.status == "completed"
    remix = await openai.videos.remix(
        source.id,
        prompt="the kite at night",
        extra_headers={"Idempotency-Key": "remix-1"},
    )
    again = await openai.videos.remix(
        source.id, prompt="the kite at night", extra_headers={"Idempotency-Key": "remix-1"}
    )
    assert again.id == remix.id  # replayed: bought once
    assert Video.model_validate(remix.model_dump()) == remix
    assert remix.remixed_from_video_id == source.id
    assert (remix.status, remix.model, remix.prompt) == (
        "queued",
        "bytedance/seedance-2.0-v2v",
        "the kite at night",
    )
    assert (remix.seconds, remix.size) == ("6", "1280x720")
    finished = await openai.videos.poll(remix.id, poll_interval_ms=50)
    assert (finished.status, finished.remixed_from_video_id) == ("completed", source.id)
    store = store_of(stack)
    original = await store.job_by_ref(source.id)
    job = await store.job_by_ref(remix.id)
    assert original is not None
    assert job is not None
    assert (job.pinned_slug, job.api) == ("bytedance/seedance-2.0-v2v", "openai")
    task = stack.sim.tasks[job.task_id]
    assert task.body["video_urls"] == [original.output_urls[0]]
    assert (task.body["prompt"], task.body["duration"]) == ("the kite at night", 6)
    assert (task.body["resolution"], task.body["ratio"]) == ("720p", "16:9")
    assert job.final_cost_micros == task.cost_micros > 0
    sent = [e.path for e in stack.sim.requests(method="POST")]
    assert sent.count("/api/v1/bytedance/seedance-2.0-v2v/async") == 1
    listed = [v async for v in openai.videos.list()]
    assert [(v.id, v.remixed_from_video_id) for v in listed] == [
        (remix.id, source.id),
        (source.id, None),
    ]


async def test_remix_of_a_family_without_v2v_is_a_clear_400(
    stack: Stack, openai: AsyncOpenAI
) -> None:
    """Hailuo has no video-to-video model: remix is 400 ``unsupported_operation`` naming the
    family, an unknown field 400 naming it, and no upstream submit is made for either."""
    source = await openai.videos.create_and_poll(
        model="hailuo-2.3", prompt="a red fox", poll_interval_ms=50
    )
    assert source.status == "completed"
    posts = len(stack.sim.requests(method="POST"))
    with pytest.raises(BadRequestError) as refused:
        await openai.videos.remix(source.id, prompt="the fox at night")
    assert refused.value.code == "unsupported_operation"
    assert "minimax/hailuo-2.3" in refused.value.message
    with pytest.raises(BadRequestError) as extra:
        await openai.videos.remix(source.id, prompt="p", extra_body={"seconds": "8"})
    assert extra.value.param == "seconds"
    assert len(stack.sim.requests(method="POST")) == posts


async def test_an_operator_mapped_family_remixes_into_a_single_video_field(
    make_stack: Any,
) -> None:
    """``remix_models`` maps Wan 2.7 to its video edit model: the source's URL is its one
    ``video_url``, the source's 5 seconds and 1080p class are sent, and the job settles at
    the simulator's billing."""
    stack: Stack = await make_stack(
        openai_videos={"remix_models": {"alibaba/wan2.7": "alibaba/wan2.7-videoedit"}}
    )
    stack.sim.config = stack.sim.config.model_copy(update={"file_origin": stack.sim_url})
    async with AsyncOpenAI(
        base_url=f"{stack.proxy_url}/v1", api_key=API_KEY, max_retries=0
    ) as client:
        source = await client.videos.create_and_poll(
            model="wan2.7",
            prompt="a lighthouse",
            seconds="5",  # type: ignore[arg-type]  # Wan's 5 s: outside the SDK's literal set
            size="1792x1024",
            poll_interval_ms=50,
        )
        remix = await client.videos.remix(source.id, prompt="the lighthouse in fog")
        finished = await client.videos.poll(remix.id, poll_interval_ms=50)
    assert (remix.model, remix.seconds, remix.size) == (
        "alibaba/wan2.7-videoedit",
        "5",
        "1792x1024",
    )
    assert (finished.status, finished.remixed_from_video_id) == ("completed", source.id)
    store = store_of(stack)
    original = await store.job_by_ref(source.id)
    job = await store.job_by_ref(remix.id)
    assert original is not None
    assert job is not None
    task = stack.sim.tasks[job.task_id]
    assert task.body["video_url"] == original.output_urls[0]
    assert (task.body["duration"], task.body["resolution"]) == (5, "1080P")
    assert job.final_cost_micros == task.cost_micros > 0


async def test_a_remix_is_governed_as_a_submit(make_stack: Any) -> None:
    """A remix is priced and reserved like any submit: over the team's hard budget it is 429
    ``insufficient_quota``, and a key not allowed the v2v model gets 404 ``model_not_found``;
    neither reaches the upstream."""
    stack: Stack = await make_stack(
        SimulatorConfig.fast(concurrency_limit=0, api_keys={UPSTREAM_KEY: "default"}),
        keys={"mode": "virtual", "cache_seconds": 0.1},
        upstream={"api_key": UPSTREAM_KEY},
    )
    stack.sim.config = stack.sim.config.model_copy(update={"file_origin": stack.sim_url})
    _, token = await key(stack, team="studio-a")
    _, narrow = await key(stack, team="studio-b", allowed_models=("bytedance/seedance-2.0-t2v",))
    async with sdk(stack, token) as client, sdk(stack, narrow) as limited:
        source = await client.videos.create_and_poll(
            model="seedance-2.0", prompt="a kite", size="1280x720", poll_interval_ms=50
        )
        other = await limited.videos.create_and_poll(
            model="seedance-2.0", prompt="a kite", size="1280x720", poll_interval_ms=50
        )
        assert (source.status, other.status) == ("completed", "completed")
        # the source cost $0.50: $0.70 is left, less than the remix is estimated at
        await put_budget(stack, "studio-a-day", "team", "studio-a", "1.20")
        posts = len(stack.sim.requests(method="POST"))
        with pytest.raises(RateLimitError) as broke:
            await client.videos.remix(source.id, prompt="at night")
        assert broke.value.code == "insufficient_quota"
        assert "$0.70 of $1.20 left" in broke.value.message
        assert broke.value.response.headers["x-should-retry"] == "false"
        with pytest.raises(NotFoundError) as refused:
            await limited.videos.remix(other.id, prompt="at night")
        assert refused.value.code == "model_not_found"
    assert len(stack.sim.requests(method="POST")) == posts
