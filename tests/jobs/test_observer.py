"""The poll observer: a job's answers followed, foreign ids forgotten at once, failures absorbed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from harness.config import settings_for
from proxy.jobs.labels import Labels
from proxy.jobs.tracker import JobTracker, Replica
from proxy.stores import Store, open_store
from proxy.stores.base import StoreUnavailableError
from proxy.stores.records import JobStatus
from proxy.telemetry.metrics import Metrics
from tests.stores.helpers import new_job

SLUG = "minimax/hailuo-02-t2v"


def answer(status: str, **data: Any) -> bytes:
    return json.dumps(
        {"code": 0, "message": "success", "data": {"task_id": "t", "status": status, **data}}
    ).encode()


class CountingStore:
    """The real store, with the ledger reads a first look makes counted (and made to fail)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.reads = 0
        self.down = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def has_job(self, task_id: str) -> bool:
        self.reads += 1
        if self.down:
            raise StoreUnavailableError("the database is locked")
        return await self._store.has_job(task_id)

    async def get_job(self, task_id: str) -> Any:
        self.reads += 1
        return await self._store.get_job(task_id)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        yield opened
    finally:
        await opened.close()


def tracker_on(store: Any, metrics: Metrics | None = None) -> JobTracker:
    settings = settings_for("http://127.0.0.1:1")
    labels = Labels.of((SLUG,), (), ())
    return JobTracker(store, settings, metrics or Metrics(), labels, Replica("replica-a"))


async def test_a_foreign_task_costs_one_look(store: Store) -> None:
    """A task id the ledger does not hold is looked up once; its later answers are not
    even read."""
    counting = CountingStore(store)
    jobs = tracker_on(counting)
    assert jobs.follows("foreign-1", 200)
    for _ in range(3):
        await jobs.observe_reply("foreign-1", 200, answer("processing"), source="client")
    assert counting.reads == 1
    assert not jobs.follows("foreign-1", 200)
    assert not jobs.follows("anything", 404)


async def test_a_job_submitted_elsewhere_is_recognised_and_followed(store: Store) -> None:
    """A job another replica wrote is found at the first look and its status is written."""
    await store.insert_job(new_job("job-1", caller="fp:aaaa", pinned_slug=SLUG))
    jobs = tracker_on(store)
    job = await jobs.observe_reply("job-1", 200, answer("processing"), source="client")
    assert job is not None
    assert job.status is JobStatus.PROCESSING


async def test_a_terminal_answer_settles_once_and_is_kept_for_its_caller_only(
    store: Store,
) -> None:
    """The success is written once, with the outputs and the upstream's charge; the answer
    is served again only to the caller that polled it."""
    await store.insert_job(new_job("job-2", caller="fp:aaaa", pinned_slug=SLUG))
    jobs = tracker_on(store)
    body = answer(
        "success",
        result={"resources": [{"url": "https://cdn.example/v.mp4"}]},
        billing={"amount": 0.42},
    )
    with capture_logs() as logs:
        job = await jobs.observe_reply("job-2", 200, body, source="client", caller="fp:aaaa")
        await jobs.observe_reply("job-2", 200, body, source="client", caller="fp:aaaa")
    assert job is not None
    assert job.status is JobStatus.SUCCESS
    assert job.output_urls == ("https://cdn.example/v.mp4",)
    assert (job.final_cost_micros, job.cost_source) == (420_000, "charge")
    assert [line["event"] for line in logs].count("job.terminal") == 1
    assert jobs.cached_terminal("job-2", "fp:aaaa") == body
    assert jobs.cached_terminal("job-2", "fp:bbbb") is None
    assert jobs.cached_terminal("job-2", None) is None


async def test_an_unrecognised_status_is_counted_and_changes_nothing(store: Store) -> None:
    """A status outside the known ones is counted and logged; the job stays where it is, and
    a task id with one is not taken for foreign."""
    await store.insert_job(new_job("job-3", caller="fp:aaaa", pinned_slug=SLUG))
    metrics = Metrics()
    jobs = tracker_on(store, metrics)
    with capture_logs() as logs:
        job = await jobs.observe_reply("job-3", 200, answer("warming_up"), source="client")
        await jobs.observe_reply("other", 200, answer("warming_up"), source="client")
    assert job is not None
    assert job.status is JobStatus.PENDING
    assert [line["status"] for line in logs if line["event"] == "job.unrecognised_status"] == [
        "warming_up",
        "warming_up",
    ]
    counted = metrics.registry.get_sample_value(
        "modellix_proxy_upstream_unknown_status_total", {"model": SLUG}
    )
    assert counted == 1
    assert jobs.follows("other", 200)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"data": {"status": ""}}'])
async def test_an_answer_that_is_not_a_task_changes_nothing(store: Store, body: bytes) -> None:
    """A body that is not a task answer is ignored, and its task id not taken for foreign."""
    counting = CountingStore(store)
    jobs = tracker_on(counting)
    assert await jobs.observe_reply("job-4", 200, body, source="client") is None
    assert counting.reads == 0
    assert jobs.follows("job-4", 200)


async def test_a_store_failure_loses_the_observation_not_the_poll(store: Store) -> None:
    """A store that fails during the first look gives no job and a warning; the id is not
    taken for foreign, so the next answer looks again."""
    counting = CountingStore(store)
    counting.down = True
    jobs = tracker_on(counting)
    with capture_logs() as logs:
        assert await jobs.observe_reply("job-5", 200, answer("pending"), source="client") is None
    assert [line["event"] for line in logs] == ["job.observation_not_written"]
    assert jobs.follows("job-5", 200)
