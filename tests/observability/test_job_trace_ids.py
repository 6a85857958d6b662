"""A watcher-settled job: its terminal log line and poll spans point at the job's traces."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness.waits import wait_until
from proxy.telemetry.spans import JOB_SPAN_NAME, WATCHER_POLL_SPAN_NAME
from proxy.telemetry.tracing import Tracing
from tests.observability.conftest import LiveStackFactory, log_lines
from tests.observability.traffic import accepted, job_terminal


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def test_watcher_settled_job_logs_its_job_span_and_polls_carry_the_task(
    make_live: LiveStackFactory,
    http: aiohttp.ClientSession,
    traced: Tracing,
    spans: InMemorySpanExporter,
    log_stream: io.StringIO,
) -> None:
    """`job.terminal` carries the job span's ids; watcher polls name the task, link the submit."""
    stack = await make_live(
        tracing=traced,
        watcher={
            "enabled": True,
            "tick_seconds": 0.05,
            "first_check_seconds": 0,
            "base_delay_seconds": 0.05,
            "max_delay_seconds": 0.1,
            "client_grace_seconds": 0,
        },
    )
    task_id = await accepted(http, stack.proxy_url)
    await job_terminal(stack.store, task_id)

    async def span_and_line() -> bool:  # both come right after the ledger's terminal write
        ended = any(s.name == JOB_SPAN_NAME for s in spans.get_finished_spans())
        return ended and any(line["event"] == "job.terminal" for line in log_lines(log_stream))

    await wait_until(span_and_line, what="the job span and its job.terminal line")
    finished = spans.get_finished_spans()
    job_spans = [s for s in finished if s.name == JOB_SPAN_NAME]
    assert len(job_spans) == 1
    job_span = job_spans[0]
    assert job_span.attributes is not None
    assert job_span.attributes["modellix.task_id"] == task_id
    terminal = [line for line in log_lines(log_stream) if line["event"] == "job.terminal"]
    assert len(terminal) == 1
    assert terminal[0]["trace_id"] == format(job_span.context.trace_id, "032x")
    assert terminal[0]["span_id"] == format(job_span.context.span_id, "016x")
    polls = [s for s in finished if s.name == WATCHER_POLL_SPAN_NAME]
    assert polls, "the watcher's polls made no spans"
    submit_link = job_span.links[0].context
    for poll in polls:
        assert poll.attributes is not None
        assert poll.attributes["modellix.task_id"] == task_id
        assert [link.context.span_id for link in poll.links] == [submit_link.span_id]
        children = [s for s in finished if s.parent and s.parent.span_id == poll.context.span_id]
        assert [child.name for child in children] == ["GET"] * len(children)
        assert children, "the upstream attempt is not a child of the poll span"
