"""The official OpenAI Python SDK, changed only in ``base_url`` and ``api_key``, runs the
Videos API through the proxy against the simulator, and its typed models parse every answer."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError
from openai.types import Video, VideoDeleteResponse

from proxy.stores.base import Store
from tests.catalog.imagebytes import png
from tests.e2e.conftest import Stack

API_KEY = "sk-e2e-secret-key-123456"
# The SDK warns that OpenAI's own Sora service will shut down; the API shape is what is used.
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


def strict(video: Video) -> Video:
    """The answer validated field by field (not merely constructed, as the SDK does)."""
    return Video.model_validate(video.model_dump())


async def test_create_poll_download_list_delete(stack: Stack, openai: AsyncOpenAI) -> None:
    """create_and_poll, retrieve, list, download_content (the simulator's bytes) and delete."""
    video = await openai.videos.create_and_poll(
        model="hailuo-2.3",
        prompt="a red fox in snow",
        seconds="6",  # type: ignore[arg-type]  # Hailuo's 6 s: outside the SDK's literal set
        size="1280x720",
        poll_interval_ms=50,
    )
    assert strict(video).status == "completed", video
    assert video.id.startswith("video_")
    assert video.progress == 100
    assert video.expires_at is not None
    assert video.completed_at is not None
    again = await openai.videos.retrieve(video.id)
    assert (again.id, again.status) == (video.id, "completed")
    job = await store_of(stack).job_by_ref(video.id)
    assert job is not None
    assert (job.pinned_slug, job.api) == ("minimax/hailuo-2.3-t2v", "openai")
    task = stack.sim.tasks[job.task_id]
    upstream_expiry = round(task.expires_at(stack.sim.config.retention_seconds) * 1000) / 1000
    assert again.expires_at == int(upstream_expiry)  # the upstream's result_expires_at
    content = await openai.videos.download_content(video.id)
    async with aiohttp.ClientSession() as http, http.get(job.output_urls[0]) as resp:
        direct = await resp.read()
    assert direct
    assert content.content == direct
    for variant in ("thumbnail", "spritesheet"):  # a Modellix task returns its video alone
        with pytest.raises(NotFoundError) as absent:
            await openai.videos.download_content(video.id, variant=variant)
        assert (absent.value.code, absent.value.param) == ("variant_not_available", "variant")
        assert isinstance(absent.value.body, dict)
        assert absent.value.body == {
            "message": absent.value.body["message"],
            "type": "invalid_request_error",
            "param": "variant",
            "code": "variant_not_available",
        }
    page = await openai.videos.list()
    assert [v.id for v in page.data] == [video.id]
    deleted = await openai.videos.delete(video.id)
    assert isinstance(deleted, VideoDeleteResponse)
    assert deleted.deleted
    with pytest.raises(NotFoundError):
        await openai.videos.retrieve(video.id)
    assert (await openai.videos.list()).data == []


async def test_image_reference_uses_the_i2v_model(stack: Stack, openai: AsyncOpenAI) -> None:
    """An uploaded image, or OpenAI's JSON image_url form, sends the image-to-video sibling."""
    image = png(640, 360)
    video = await openai.videos.create(
        model="hailuo-2.3",
        prompt="the fox turns",
        input_reference=("fox.png", io.BytesIO(image), "image/png"),
    )
    assert strict(video).status == "queued"
    data_url = "data:image/png;base64," + base64.b64encode(image).decode()
    # The SDK sends input_reference only as an upload; OpenAI's JSON form, as a raw request:
    second = await openai.post(
        "/videos",
        body={"model": "hailuo-2.3", "prompt": "turns", "input_reference": {"image_url": data_url}},
        cast_to=Video,
    )
    assert strict(second).status == "queued"
    for made in (video, second):
        job = await store_of(stack).job_by_ref(made.id)
        assert job is not None
        assert job.pinned_slug == "minimax/hailuo-2.3-i2v"
    sent = [entry.path for entry in stack.sim.requests(method="POST")]
    assert sent == ["/api/v1/minimax/hailuo-2.3-i2v/async"] * 2


async def test_invalid_seconds_or_size_costs_no_upstream_call(
    stack: Stack, openai: AsyncOpenAI
) -> None:
    """A duration or size the model refuses is a 400 naming the parameter, and nothing
    reaches the upstream."""
    with pytest.raises(BadRequestError) as refused:
        await openai.videos.create(model="hailuo-2.3", prompt="a fox", seconds="4")
    assert refused.value.param == "seconds"
    with pytest.raises(BadRequestError) as refused:
        await openai.videos.create(model="hailuo-2.3", prompt="a fox", size="854x480")  # type: ignore[arg-type]
    assert refused.value.param == "size"
    assert stack.sim.requests(method="POST") == []
