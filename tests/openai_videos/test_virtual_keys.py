"""Proxy-issued keys on ``/v1/videos``: the SDK's ``api_key`` is a proxy key, the upstream sees
only the real key, a key's allowed models and its budget hold, and each key sees its own
videos only."""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI, AuthenticationError, NotFoundError, RateLimitError

from proxy.governance.keys import new_key
from proxy.simulator import SimulatorConfig
from tests.catalog.imagebytes import png
from tests.e2e.conftest import Stack
from tests.e2e.test_governance import UPSTREAM_KEY, put_budget
from tests.support import SIMULATOR_HAILUO_PRICES

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


async def key(stack: Stack, **fields: Any) -> tuple[str, str]:
    store = stack.runtime.store
    assert store is not None
    record, token = new_key(time.time(), **fields)
    await store.create_virtual_key(record)
    return record.key_id, token


def sdk(stack: Stack, token: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{stack.proxy_url}/v1", api_key=token, max_retries=0)


async def test_proxy_keys_govern_videos(make_stack: Any) -> None:
    """A video made with a proxy key is that key's (its team's, its budget's); the raw
    upstream key is refused; a model outside the key's list is 404; a key over its budget
    gets 429 ``insufficient_quota``; another key cannot see the video."""
    stack: Stack = await make_stack(
        SimulatorConfig.fast(concurrency_limit=0, api_keys={UPSTREAM_KEY: "default"}),
        keys={"mode": "virtual", "cache_seconds": 0.1},
        upstream={"api_key": UPSTREAM_KEY},
        pricing=SIMULATOR_HAILUO_PRICES,
    )
    key_id, token = await key(stack, team="studio-a", allowed_models=("minimax/hailuo-02-t2v",))
    _, other = await key(stack, team="studio-b")
    await put_budget(stack, "studio-a-day", "team", "studio-a", "0.50")  # one $0.324 video
    async with sdk(stack, token) as client, sdk(stack, other) as stranger:
        video = await client.videos.create(
            model="hailuo-02",
            prompt="a fox",
            seconds="6",  # type: ignore[arg-type]
        )
        with pytest.raises(RateLimitError) as refused:
            await client.videos.create(model="hailuo-02", prompt="again", seconds="6")  # type: ignore[arg-type]
        assert refused.value.code == "insufficient_quota"
        with pytest.raises(NotFoundError) as refused_model:
            await client.videos.create(model="kling-v3", prompt="a kite", seconds="8")
        assert refused_model.value.code == "model_not_found"
        with pytest.raises(NotFoundError):
            await stranger.videos.retrieve(video.id)
        assert (await stranger.videos.list()).data == []
        assert (await client.videos.retrieve(video.id)).id == video.id
    async with sdk(stack, UPSTREAM_KEY) as raw:
        with pytest.raises(AuthenticationError):
            await raw.videos.list()
    store = stack.runtime.store
    assert store is not None
    job = await store.job_by_ref(video.id)
    assert job is not None
    assert (job.caller, job.team) == (f"vk:{key_id}", "studio-a")
    posted = stack.sim.requests(method="POST")
    assert len(posted) == 1  # only the one video that fit reached the upstream


async def test_multipart_reference_as_text(stack: Stack) -> None:
    """A multipart form whose input_reference is a data URL as text (not a file) is accepted."""
    data_url = "data:image/png;base64," + base64.b64encode(png(640, 360)).decode()
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in (
        ("model", "hailuo-2.3"),
        ("prompt", "turns"),
        ("input_reference", data_url),
    ):
        form.add_field(name, value)
    headers = {"Authorization": "Bearer sk-multipart-text-0001"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{stack.proxy_url}/v1/videos", data=form, headers=headers) as resp,
    ):
        assert resp.status == 200, await resp.text()
        doc = await resp.json()
    store = stack.runtime.store
    assert store is not None
    job = await store.job_by_ref(doc["id"])
    assert job is not None
    assert job.pinned_slug == "minimax/hailuo-2.3-i2v"
