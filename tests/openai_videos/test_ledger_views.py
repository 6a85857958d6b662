"""Videos in the ledger's views: the video id survives a restart of the proxy, and reports,
FOCUS and metrics tell the two API doors apart (``api``: ``modellix`` or ``openai``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import aiohttp
import pytest
from openai import AsyncOpenAI

from harness.config import settings_for
from harness.waits import wait_until
from proxy.app import create_app
from proxy.governance import report
from proxy.governance.focus import COLUMNS, focus_values
from proxy.simulator import Simulator, SimulatorConfig
from proxy.stores.base import Store
from tests.e2e.conftest import KEY, ServerFactory, Stack
from tests.e2e.test_client_flow import HAILUO
from tests.support import serve_simulator

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


async def test_a_video_id_survives_a_restart(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    """A video made before the proxy stopped is found by the same id after it restarts on the
    same ledger, and reaches ``completed`` there."""
    sim = Simulator(SimulatorConfig.fast(concurrency_limit=0))
    sim_url, _ = await serve_simulator(aiohttp_server, sim)
    settings = settings_for(sim_url, store={"url": f"sqlite:///{tmp_path / 'ledger.db'}"})
    first = await aiohttp_server(create_app(settings))
    async with AsyncOpenAI(base_url=f"{first.make_url('/v1')}", api_key="sk-restart") as c:
        made = await c.videos.create(model="hailuo-2.3", prompt="before the restart")
    await first.close()
    second = await aiohttp_server(create_app(settings))
    async with AsyncOpenAI(base_url=f"{second.make_url('/v1')}", api_key="sk-restart") as c:
        again = await c.videos.poll(made.id, poll_interval_ms=50)
    assert (again.id, again.created_at, again.prompt) == (made.id, made.created_at, made.prompt)
    assert again.status == "completed"


async def test_reports_focus_and_metrics_name_the_door(stack: Stack) -> None:
    """One job through each door: the report grouped by ``api`` has a row for each, each FOCUS
    row's Tags carry its door, and the jobs-by-API counter counts one of each."""
    async with aiohttp.ClientSession(headers={"Authorization": KEY}) as http:
        async with http.post(f"{stack.proxy_url}/api/v1/minimax/hailuo-02-t2v", json=HAILUO) as r:
            task_id = (await r.json())["data"]["task_id"]
        async with AsyncOpenAI(
            base_url=f"{stack.proxy_url}/v1", api_key=KEY.split()[1], max_retries=0
        ) as client:
            video = await client.videos.create_and_poll(
                model="hailuo-02",
                prompt="through the other door",
                seconds="6",  # type: ignore[arg-type]  # Hailuo's 6 s
                poll_interval_ms=50,
            )
        assert video.status == "completed"
        store = stack.runtime.store
        assert isinstance(store, Store)

        async def modellix_done() -> bool:
            async with http.get(f"{stack.proxy_url}/api/v1/tasks/{task_id}") as r:
                await r.read()
            job = await store.get_job(task_id)
            return job is not None and job.terminal

        await wait_until(modellix_done, within=20, what="the Modellix job's end")
    until = time.time() + 60
    rows = await report.build(store, 0, until, ["api"])
    assert {row["api"]: row["jobs"] for row in rows} == {"modellix": 1, "openai": 1}
    tags = {}
    async for page in store.ledger_pages(0, until):
        for row in page:
            values = dict(zip(COLUMNS, focus_values(row), strict=True))
            tags[row.task_id] = json.loads(values["Tags"] or "{}")["api"]
    video_job = await store.job_by_ref(video.id)
    assert video_job is not None
    assert tags == {task_id: "modellix", video_job.task_id: "openai"}
    metrics = stack.metrics
    for api in ("modellix", "openai"):
        sample = metrics.registry.get_sample_value(
            "modellix_proxy_jobs_by_api_total", {"api": api, "model": "minimax/hailuo-02-t2v"}
        )
        assert sample == 1
