"""Traces of real requests: SERVER span per request, CLIENT span per attempt, one job span."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from proxy.telemetry.spans import JOB_SPAN_NAME
from proxy.telemetry.traceparent import format_traceparent
from proxy.telemetry.tracing import Tracing
from tests.observability.conftest import LiveStack, LiveStackFactory, log_lines
from tests.observability.traffic import (
    ALIAS_PATH,
    AUTH,
    KEY,
    accepted,
    get,
    poll_until_terminal,
)

SUBMIT_SPAN = "POST /api/v1/{provider}/{model}"
POLL_SPAN = "GET /api/v1/tasks/{task_id}"
INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
EXEMPLAR = re.compile(r'^(\S+)\{[^}]*\} \S+ # \{trace_id="([0-9a-f]{32})"\}', re.M)


@pytest.fixture
async def stack(make_live: LiveStackFactory, traced: Tracing) -> LiveStack:
    """Simulator + proxy, tracing into the in-memory exporter, no watcher."""
    return await make_live(tracing=traced)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.name == name]


def one(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, [span.name for span in spans.get_finished_spans()]
    return found[0]


def children(spans: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in spans.get_finished_spans()
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


async def test_submit_has_server_span_and_traced_upstream_attempt(
    stack: LiveStack, http: aiohttp.ClientSession, spans: InMemorySpanExporter
) -> None:
    """A submit is a SERVER span named by its route template, whose CLIENT child went upstream."""
    task_id = await accepted(http, stack.proxy_url)
    server = one(spans, SUBMIT_SPAN)
    assert server.kind is SpanKind.SERVER
    attrs = dict(server.attributes or {})
    assert attrs["http.request.method"] == "POST"
    assert attrs["http.route"] == "/api/v1/{provider}/{model}"
    assert attrs["url.path"] == ALIAS_PATH
    assert attrs["url.scheme"] == "http"
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == stack.running.port
    assert attrs["http.response.status_code"] == 200
    assert attrs["modellix.task_id"] == task_id
    assert attrs["modellix.model.pinned"] == "minimax/hailuo-02-t2v"
    assert server.status.status_code is StatusCode.UNSET
    [client] = children(spans, server)
    assert client.kind is SpanKind.CLIENT
    assert client.name == "POST"
    client_attrs = dict(client.attributes or {})
    assert client_attrs["url.full"] == f"{stack.sim_url}/api/v1/minimax/hailuo-02-t2v"
    assert client_attrs["http.response.status_code"] == 200
    assert client_attrs["modellix.upstream.operation"] == "submit"
    assert "http.request.resend_count" not in client_attrs
    assert client.context is not None
    [seen] = stack.sim.requests(method="POST")
    assert seen.headers["traceparent"] == format_traceparent(client.context)


async def test_retried_attempts_are_sibling_client_spans(
    stack: LiveStack, http: aiohttp.ClientSession, spans: InMemorySpanExporter
) -> None:
    """Each retry is its own CLIENT span under the same SERVER span, with its resend count."""
    stack.sim.inject("503", count=1, route="submit")
    await accepted(http, stack.proxy_url)
    server = one(spans, SUBMIT_SPAN)
    attempts = sorted(children(spans, server), key=lambda span: span.start_time or 0)
    assert len(attempts) == 2
    first, second = (dict(span.attributes or {}) for span in attempts)
    assert first["http.response.status_code"] == 503
    assert first["error.type"] == "503"
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert second["http.request.resend_count"] == 1
    assert second["http.response.status_code"] == 200
    sent = [record.headers["traceparent"] for record in stack.sim.requests(method="POST")]
    assert sent == [format_traceparent(span.context) for span in attempts if span.context]
    assert dict(server.attributes or {})["modellix.upstream.attempts"] == 2


async def test_incoming_traceparent_is_continued(
    stack: LiveStack, http: aiohttp.ClientSession, spans: InMemorySpanExporter
) -> None:
    """A caller's traceparent becomes the SERVER span's parent, and the upstream joins its trace."""
    await accepted(http, stack.proxy_url, headers={"traceparent": INCOMING})
    server = one(spans, SUBMIT_SPAN)
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == INCOMING.split("-")[2]
    [seen] = stack.sim.requests(method="POST")
    assert seen.headers["traceparent"].split("-")[1] == INCOMING.split("-")[1]
    assert seen.headers["traceparent"] != INCOMING


async def test_job_span_runs_from_submit_to_terminal_and_links_the_submit(
    stack: LiveStack, http: aiohttp.ClientSession, spans: InMemorySpanExporter
) -> None:
    """At the terminal state one job span starts at the submit time and links the submit span."""
    task_id = await accepted(http, stack.proxy_url)
    await poll_until_terminal(http, stack.proxy_url, task_id)
    job_record = await stack.store.get_job(task_id)
    assert job_record is not None
    assert job_record.terminal_at is not None
    submit = one(spans, SUBMIT_SPAN)
    job = one(spans, JOB_SPAN_NAME)
    assert job.kind is SpanKind.INTERNAL
    assert job.parent is None
    assert job.start_time == round(job_record.submitted_at * 1_000_000) * 1_000
    assert job.end_time == round(job_record.terminal_at * 1_000_000) * 1_000
    assert submit.start_time is not None
    assert abs(job.start_time - submit.start_time) < 1_000_000_000
    assert submit.context is not None
    [link] = job.links
    assert (link.context.trace_id, link.context.span_id) == (
        submit.context.trace_id,
        submit.context.span_id,
    )
    assert job_record.traceparent == format_traceparent(submit.context)
    attrs = dict(job.attributes or {})
    assert attrs["modellix.task_id"] == task_id
    assert attrs["modellix.model.alias"] == "minimax/hailuo"
    assert attrs["modellix.model.pinned"] == "minimax/hailuo-02-t2v"
    assert attrs["modellix.cost.estimated_usd"] == 0.324
    assert attrs["modellix.cost.final_usd"] == 0.324
    assert attrs["modellix.job.status"] == "success"
    assert attrs["modellix.job.attempts"] == 1
    assert attrs["modellix.job.polls"] == job_record.client_polls >= 1
    polls = named(spans, POLL_SPAN)
    assert polls
    assert all(task_id not in span.name for span in spans.get_finished_spans())
    assert {dict(span.attributes or {})["modellix.task_id"] for span in polls} == {task_id}
    assert all(record.headers.get("traceparent") for record in stack.sim.requests(route="poll"))


async def test_job_span_is_emitted_once_even_with_more_polls(
    stack: LiveStack, http: aiohttp.ClientSession, spans: InMemorySpanExporter
) -> None:
    """Polls after the terminal state never make a second job span."""
    task_id = await accepted(http, stack.proxy_url)
    await poll_until_terminal(http, stack.proxy_url, task_id)
    for _ in range(3):
        status, _ = await get(http, f"{stack.proxy_url}/api/v1/tasks/{task_id}")
        assert status == 200
    assert len(named(spans, JOB_SPAN_NAME)) == 1


async def test_own_and_unmatched_routes_are_named_without_raw_paths(
    stack: LiveStack, http: aiohttp.ClientSession, spans: InMemorySpanExporter
) -> None:
    """Health checks use their route; an unmatched path is named by the method alone."""
    assert (await get(http, f"{stack.proxy_url}/healthz"))[0] == 200
    assert (await get(http, f"{stack.proxy_url}/nothing/here/123"))[0] == 404
    assert (await get(http, f"{stack.proxy_url}/api/v1/team/balance"))[0] == 200
    names = {span.name for span in spans.get_finished_spans() if span.kind is SpanKind.SERVER}
    assert names == {"GET /healthz", "GET", "GET /api/v1/team/balance"}
    [unmatched] = [span for span in named(spans, "GET") if span.kind is SpanKind.SERVER]
    assert "http.route" not in (unmatched.attributes or {})
    assert dict(unmatched.attributes or {})["http.response.status_code"] == 404
    assert unmatched.status.status_code is StatusCode.UNSET
    assert not unmatched.events


async def test_log_lines_carry_the_active_span(
    stack: LiveStack,
    http: aiohttp.ClientSession,
    spans: InMemorySpanExporter,
    log_stream: io.StringIO,
) -> None:
    """The access line and the job lines carry the trace and span ids of the span they ran in."""
    task_id = await accepted(http, stack.proxy_url)
    await poll_until_terminal(http, stack.proxy_url, task_id)
    submit = one(spans, SUBMIT_SPAN)
    job = one(spans, JOB_SPAN_NAME)
    assert submit.context is not None
    assert job.context is not None
    lines = log_lines(log_stream)
    access = [line for line in lines if line["event"] == "request"]
    assert access
    assert all({"trace_id", "span_id"} <= set(line) for line in access)
    submitted = next(line for line in lines if line["event"] == "job.submitted")
    assert submitted["trace_id"] == format(submit.context.trace_id, "032x")
    assert submitted["span_id"] == format(submit.context.span_id, "016x")
    submit_access = next(
        line for line in access if line["path"] == ALIAS_PATH and line["status"] == 200
    )
    assert submit_access["span_id"] == format(submit.context.span_id, "016x")
    terminal = next(line for line in lines if line["event"] == "job.terminal")
    assert terminal["task_id"] == task_id
    assert "trace_id" in terminal
    assert KEY not in log_stream.getvalue()


async def test_histograms_carry_trace_exemplars(
    stack: LiveStack, http: aiohttp.ClientSession, spans: InMemorySpanExporter
) -> None:
    """OpenMetrics exemplars: request histograms name request traces, job histograms the job."""
    task_id = await accepted(http, stack.proxy_url)
    await poll_until_terminal(http, stack.proxy_url, task_id)
    status, body = await get(
        http, f"{stack.admin_url}/metrics", headers={"Accept": "application/openmetrics-text"}
    )
    assert status == 200
    exemplars: dict[str, set[str]] = {}
    for sample, trace_id in EXEMPLAR.findall(body.decode()):
        exemplars.setdefault(sample, set()).add(trace_id)
    job = one(spans, JOB_SPAN_NAME)
    assert job.context is not None
    job_trace = format(job.context.trace_id, "032x")
    request_traces = {
        format(span.context.trace_id, "032x")
        for span in spans.get_finished_spans()
        if span.context is not None and span.kind is not SpanKind.INTERNAL
    }
    assert exemplars["modellix_proxy_job_cost_usd_bucket"] == {job_trace}
    assert exemplars["modellix_proxy_job_time_to_terminal_seconds_bucket"] == {job_trace}
    assert exemplars["modellix_proxy_http_request_duration_seconds_bucket"] <= request_traces
    assert exemplars["modellix_proxy_upstream_request_duration_seconds_bucket"] <= request_traces
    plain = (await get(http, f"{stack.admin_url}/metrics", headers={}))[1].decode()
    assert "trace_id" not in plain
    assert AUTH["Authorization"] not in plain
