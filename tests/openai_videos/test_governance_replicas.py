"""Governance through ``/v1/videos`` on three proxy processes sharing one PostgreSQL: a hard
budget is never overshot by a burst, retries with one ``Idempotency-Key`` buy once, a video
id is the same on every replica, and each job settles at what the simulator billed."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI
from openai.types import Video

from tests.e2e.test_governance_replicas import (
    BURST,
    JOB,
    REPLICAS,
    ServerFactory,
    burst_session,
    cluster,
    put_budget,
    racing,
    settled,
    window_keys,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]
# Hailuo 02 at 6 s and 768P: exactly JOB micro-dollars under the tests' price table.
REQUEST = {"model": "hailuo-02", "seconds": "6", "size": "1280x720"}  # 768P

Result = tuple[int, dict[str, Any], dict[str, str]]


async def create(
    session: aiohttp.ClientSession, url: str, key: str, prompt: str, **headers: str
) -> Result:
    body = {**REQUEST, "prompt": prompt}
    auth = {"Authorization": f"Bearer {key}", **headers}
    async with session.post(f"{url}/v1/videos", json=body, headers=auth) as resp:
        return resp.status, await resp.json(content_type=None), dict(resp.headers)


async def test_hard_budget_holds_under_a_burst_of_videos(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """300 racing video creates on three replicas under $3: 9 videos, 291 OpenAI
    ``insufficient_quota`` refusals, no overshoot, every job billed as the upstream billed it."""
    async with cluster(aiohttp_server, tmp_path, virtual=False) as cl:
        await put_budget(cl, "videos", {"scope": "global", "window": "month", "limit_usd": "3.00"})
        keys = window_keys(["videos"])
        fits = 3_000_000 // JOB
        async with burst_session() as session:
            shots = [
                create(session, cl.procs[i % REPLICAS].url, f"sk-client-{i % 7}", f"burst {i}")
                for i in range(BURST)
            ]
            results, most = await racing(cl.store, keys, shots)
        assert Counter(status for status, _, _ in results) == {200: fits, 429: BURST - fits}
        assert most["budget:videos"] <= 3_000_000
        for status, doc, headers in results:
            if status == 429:
                assert doc["error"]["code"] == "insufficient_quota"
                assert headers["x-should-retry"] == "false"
            else:
                assert Video.model_validate(doc).status == "queued"
        assert cl.sim.counters.tasks_created == fits
        videos = [doc["id"] for status, doc, _ in results if status == 200]
        jobs = [await cl.store.job_by_ref(v) for v in videos]
        task_ids = [job.task_id for job in jobs if job is not None]
        assert len(task_ids) == fits
        await settled(cl.store, task_ids, keys)
        cl.sim.settle()
        for task_id in task_ids:
            job = await cl.store.get_job(task_id)
            assert job is not None
            assert job.api == "openai"
            assert job.final_cost_micros == cl.sim.tasks[task_id].cost_micros == JOB
        assert sum(
            r.final_cost_micros for r in await cl.store.spend_summary(0, time.time() + 60)
        ) == (cl.sim.billed_total_micros())


async def test_one_idempotency_key_buys_once_across_replicas(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """The SDK on every replica at once with one Idempotency-Key (retrying the 409 of a key
    in flight as it does): one upstream task, one video id, seen alike by every replica."""
    async with cluster(aiohttp_server, tmp_path, virtual=False) as cl:
        clients = [
            AsyncOpenAI(base_url=f"{proc.url}/v1", api_key="sk-client-1", max_retries=8)
            for proc in cl.procs
        ]
        try:
            made = await asyncio.gather(
                *(
                    client.videos.create(
                        model="hailuo-02",
                        prompt="one fox",
                        seconds="6",  # type: ignore[arg-type]  # Hailuo's 6 s
                        extra_headers={"Idempotency-Key": "retry-me-1"},
                    )
                    for client in clients * 2
                )
            )
            assert {video.id for video in made} == {made[0].id}
            assert cl.sim.counters.tasks_created == 1
            seen = [await client.videos.retrieve(made[0].id) for client in clients]
            assert {(v.id, v.created_at, v.model) for v in seen} == {
                (made[0].id, made[0].created_at, "hailuo-02")
            }
        finally:
            for client in clients:
                await client.close()
