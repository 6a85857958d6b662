"""OTLP/HTTP on the wire: the real exporter delivers a proxy run's spans and links to a receiver."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from proxy import __version__
from proxy.telemetry.spans import JOB_SPAN_NAME, record_job_span
from proxy.telemetry.traceparent import format_traceparent
from proxy.telemetry.tracing import setup_tracing
from tests.observability.conftest import LiveStackFactory
from tests.observability.traffic import accepted, poll_until_terminal

TIMEOUT_S = 10.0


class Receiver:
    """A tiny OTLP/HTTP traces receiver on loopback, run on its own thread and event loop.

    Its own loop keeps the exporter's blocking flush from deadlocking it, and nothing here is
    instrumented, so the export requests never become spans themselves (no feedback loop).
    """

    def __init__(self) -> None:
        self.requests: queue.Queue[ExportTraceServiceRequest] = queue.Queue()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _traces(self, request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        self.requests.put(message)
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> None:
        """Start serving and wait until the port is known."""
        self._thread.start()
        assert self._ready.wait(TIMEOUT_S), "receiver did not start"

    def stop(self) -> None:
        """Stop the server and its loop."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT_S)
        self._loop.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running OTLP/HTTP receiver."""
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


def test_job_span_and_link_arrive_over_otlp_http(receiver: Receiver) -> None:
    """Configured only through OTEL_* variables, the exporter delivers the job span and link."""
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "5000",
    }
    tracing = setup_tracing("modellix-proxy", environ)
    assert tracing.exporting
    with tracing.tracer.start_as_current_span("POST /api/v1/{provider}/{model}") as submit:
        stored = format_traceparent(submit.get_span_context())
    record_job_span(
        tracing,
        task_id="task-wire",
        submitted_at=1_700_000_000.0,
        terminal_at=1_700_000_042.0,
        status="success",
        model_pinned="minimax/hailuo-02-t2v",
        final_cost_usd=0.5,
        submit_traceparent=stored,
    )
    assert tracing.force_flush(int(TIMEOUT_S * 1000))
    spans: dict[str, Span] = {}
    resources: list[dict[str, str]] = []
    while len(spans) < 2:
        message = receiver.requests.get(timeout=TIMEOUT_S)
        for resource_spans in message.resource_spans:
            resources.append(
                {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            )
            for scope_spans in resource_spans.scope_spans:
                spans.update({s.name: s for s in scope_spans.spans})
    tracing.shutdown()
    assert resources[0]["service.name"] == "modellix-proxy"
    job, submit_span = spans["modellix.job"], spans["POST /api/v1/{provider}/{model}"]
    assert job.start_time_unix_nano == 1_700_000_000_000_000_000
    assert job.end_time_unix_nano == 1_700_000_042_000_000_000
    assert len(job.links) == 1
    assert job.links[0].span_id == submit_span.span_id
    assert job.links[0].trace_id == submit_span.trace_id
    attributes = {a.key: a.value for a in job.attributes}
    assert attributes["modellix.task_id"].string_value == "task-wire"
    assert attributes["modellix.cost.final_usd"].double_value == 0.5


def _value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(span: Span) -> dict[str, object]:
    return {a.key: _value(a.value) for a in span.attributes}


async def test_proxy_run_exports_server_client_and_job_spans(
    receiver: Receiver, make_live: LiveStackFactory
) -> None:
    """A proxy configured by OTEL_* exports one job's SERVER, CLIENT and job spans, linked."""
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "5000",
        "OTEL_SERVICE_NAME": "modellix-proxy-wire",
    }
    stack = await make_live(environ=environ)
    assert stack.tracing.exporting
    async with aiohttp.ClientSession() as http:
        task_id = await accepted(http, stack.proxy_url)
        await poll_until_terminal(http, stack.proxy_url, task_id)
    assert await asyncio.to_thread(stack.tracing.force_flush, int(TIMEOUT_S * 1000))
    spans: list[Span] = []
    resources: list[dict[str, object]] = []
    while not receiver.requests.empty():
        message = receiver.requests.get_nowait()
        for resource_spans in message.resource_spans:
            resources.append({a.key: _value(a.value) for a in resource_spans.resource.attributes})
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    assert {r["service.name"] for r in resources} == {"modellix-proxy-wire"}
    assert {r["service.version"] for r in resources} == {__version__}
    [server] = [s for s in spans if s.name == "POST /api/v1/{provider}/{model}"]
    [job] = [s for s in spans if s.name == JOB_SPAN_NAME]
    [client] = [s for s in spans if s.parent_span_id == server.span_id]
    assert server.kind == Span.SPAN_KIND_SERVER
    assert client.kind == Span.SPAN_KIND_CLIENT
    assert job.kind == Span.SPAN_KIND_INTERNAL
    assert client.trace_id == server.trace_id
    assert _attributes(server)["http.route"] == "/api/v1/{provider}/{model}"
    assert _attributes(server)["http.response.status_code"] == 200
    assert _attributes(client)["http.response.status_code"] == 200
    assert _attributes(client)["modellix.upstream.operation"] == "submit"
    [seen] = stack.sim.requests(method="POST")
    assert seen.headers["traceparent"].split("-")[1:3] == [
        client.trace_id.hex(),
        client.span_id.hex(),
    ]
    assert len(job.links) == 1
    assert (job.links[0].trace_id, job.links[0].span_id) == (server.trace_id, server.span_id)
    assert job.trace_id != server.trace_id
    assert job.start_time_unix_nano <= server.start_time_unix_nano + 1_000_000_000
    assert job.end_time_unix_nano > job.start_time_unix_nano
    attributes = _attributes(job)
    assert attributes["modellix.task_id"] == task_id
    assert attributes["modellix.model.alias"] == "minimax/hailuo"
    assert attributes["modellix.model.pinned"] == "minimax/hailuo-02-t2v"
    assert attributes["modellix.cost.estimated_usd"] == 0.324
    assert attributes["modellix.cost.final_usd"] == 0.324
    assert attributes["modellix.job.status"] == "success"
    assert attributes["modellix.job.attempts"] == 1
    polls = [s for s in spans if s.name == "GET /api/v1/tasks/{task_id}"]
    assert polls
    assert all(_attributes(s)["modellix.task_id"] == task_id for s in polls)
