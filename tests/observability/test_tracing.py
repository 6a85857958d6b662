"""Tracing helpers: span structure, links, attributes, redaction and configuration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from structlog.typing import EventDict

from proxy.telemetry.redaction import REDACTED, header_attributes, redact_url
from proxy.telemetry.spans import client_span, record_job_span, server_span, set_response_status
from proxy.telemetry.traceparent import (
    add_trace_context,
    current_traceparent,
    format_traceparent,
    parse_traceparent,
)
from proxy.telemetry.tracing import Tracing, setup_tracing

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
SECRET = "sk-live-very-secret"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """An in-memory span exporter."""
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Iterator[Tracing]:
    """Tracing exporting synchronously to the in-memory exporter."""
    tracing = setup_tracing("modellix-proxy", {}, exporter=exporter, service_version="0.1.0")
    yield tracing
    tracing.shutdown()


def _by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def _submit(tracing: Tracing) -> str:
    """Serve a submit with one upstream attempt; return the stored traceparent."""
    headers = {"Traceparent": INCOMING, "Authorization": f"Bearer {SECRET}", "User-Agent": "cli/1"}
    with server_span(
        tracing,
        method="POST",
        route="/api/v1/{provider}/{model}/async",
        path="/api/v1/minimax/hailuo/async",
        headers=headers,
        server_address="proxy.local",
        server_port=8080,
        attributes=header_attributes(headers, ["authorization", "user-agent"]),
    ) as span:
        stored = current_traceparent()
        with client_span(
            tracing,
            method="POST",
            url=f"https://user:{SECRET}@api.modellix.ai/api/v1/x?key={SECRET}",
            operation="submit",
            resend_count=1,
        ) as attempt:
            set_response_status(attempt.span, 503, server=False)
            assert attempt.headers["traceparent"] == format_traceparent(
                attempt.span.get_span_context()
            )
        set_response_status(span, 202, server=True)
    assert stored is not None
    return stored


def test_server_span_continues_incoming_trace(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    """The SERVER span joins the caller's trace and carries stable HTTP attribute names."""
    _submit(tracing)
    server = _by_name(exporter)["POST /api/v1/{provider}/{model}/async"]
    assert server.kind is SpanKind.SERVER
    assert server.context is not None
    assert server.parent is not None
    assert format(server.context.trace_id, "032x") == INCOMING.split("-")[1]
    assert format(server.parent.span_id, "016x") == INCOMING.split("-")[2]
    attrs = dict(server.attributes or {})
    assert attrs["http.request.method"] == "POST"
    assert attrs["http.route"] == "/api/v1/{provider}/{model}/async"
    assert attrs["url.path"] == "/api/v1/minimax/hailuo/async"
    assert attrs["http.response.status_code"] == 202
    assert attrs["server.address"] == "proxy.local"
    assert attrs["server.port"] == 8080
    assert attrs["http.request.header.authorization"] == (REDACTED,)
    assert server.status.status_code is StatusCode.UNSET


def test_client_span_per_attempt(tracing: Tracing, exporter: InMemorySpanExporter) -> None:
    """Each upstream attempt is a CLIENT child span with a redacted URL and error status."""
    _submit(tracing)
    spans = _by_name(exporter)
    client, server = spans["POST"], spans["POST /api/v1/{provider}/{model}/async"]
    assert client.kind is SpanKind.CLIENT
    assert client.parent is not None
    assert server.context is not None
    assert client.parent.span_id == server.context.span_id
    attrs = dict(client.attributes or {})
    assert attrs["url.full"] == "https://api.modellix.ai/api/v1/x?key=[redacted]"
    assert attrs["server.address"] == "api.modellix.ai"
    assert attrs["server.port"] == 443
    assert attrs["http.request.resend_count"] == 1
    assert attrs["error.type"] == "503"
    assert client.status.status_code is StatusCode.ERROR


def test_job_span_links_submit_and_spans_job_lifetime(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    """The job span runs from submit to terminal time, links the submit span, carries the job."""
    stored = _submit(tracing)
    context = record_job_span(
        tracing,
        task_id="task-123",
        submitted_at=1_700_000_000.25,
        terminal_at=1_700_000_095.5,
        status="success",
        model_pinned="minimax/hailuo-02-t2v",
        model_alias="minimax/hailuo",
        estimated_cost_usd=0.56,
        final_cost_usd=0.5,
        attempts=2,
        polls=7,
        submit_traceparent=stored,
        attributes={"modellix.api_key": SECRET},
    )
    job = _by_name(exporter)["modellix.job"]
    assert job.kind is SpanKind.INTERNAL
    assert job.parent is None
    assert job.context is not None
    assert job.context.span_id == context.span_id
    assert job.start_time == 1_700_000_000_250_000_000
    assert job.end_time == 1_700_000_095_500_000_000
    assert len(job.links) == 1
    submit = parse_traceparent(stored)
    assert submit is not None
    assert job.links[0].context.span_id == submit.span_id
    assert job.links[0].context.trace_id == submit.trace_id
    attrs = dict(job.attributes or {})
    assert attrs["modellix.task_id"] == "task-123"
    assert attrs["modellix.model.alias"] == "minimax/hailuo"
    assert attrs["modellix.model.pinned"] == "minimax/hailuo-02-t2v"
    assert attrs["modellix.cost.estimated_usd"] == 0.56
    assert attrs["modellix.cost.final_usd"] == 0.5
    assert (attrs["modellix.job.status"], attrs["modellix.job.attempts"]) == ("success", 2)
    assert attrs["modellix.job.polls"] == 7
    assert attrs["modellix.api_key"] == REDACTED


def test_failed_job_span_is_an_error_and_survives_bad_traceparent(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    """A failed job's span has error status; an unparsable stored traceparent gives no link."""
    record_job_span(
        tracing,
        task_id="t",
        submitted_at=100.0,
        terminal_at=50.0,
        status="failed",
        model_pinned="m",
        submit_traceparent="garbage",
    )
    job = _by_name(exporter)["modellix.job"]
    assert job.status.status_code is StatusCode.ERROR
    assert job.links == () or len(job.links) == 0
    assert job.end_time == job.start_time


def test_no_secret_reaches_any_span(tracing: Tracing, exporter: InMemorySpanExporter) -> None:
    """No attribute of any span contains the API key or the bearer token."""
    record_job_span(
        tracing,
        task_id="t",
        submitted_at=1.0,
        terminal_at=2.0,
        status="success",
        model_pinned="m",
        submit_traceparent=_submit(tracing),
        attributes={"modellix.note": f"Bearer {SECRET}", "modellix.client.token": SECRET},
    )
    spans = _by_name(exporter)
    # The span that carried the secrets was exported, with both attributes masked.
    assert "modellix.job" in spans, sorted(spans)
    job_attributes = dict(spans["modellix.job"].attributes or {})
    assert job_attributes["modellix.note"] == f"Bearer {REDACTED}"
    assert job_attributes["modellix.client.token"] == REDACTED
    assert {"POST", "POST /api/v1/{provider}/{model}/async"} <= set(spans)
    for span in spans.values():
        for value in (span.attributes or {}).values():
            assert SECRET not in str(value), span.name


def test_redaction_helpers() -> None:
    """Sensitive headers and URL parts are masked; harmless ones are kept."""
    headers = {"X-Api-Key": SECRET, "Idempotency-Key": "abc", "X-Request-Id": "r1"}
    attrs = header_attributes(headers, ["x-api-key", "idempotency-key", "x-request-id", "absent"])
    assert attrs == {
        "http.request.header.x-api-key": (REDACTED,),
        "http.request.header.idempotency-key": ("abc",),
        "http.request.header.x-request-id": ("r1",),
    }
    assert redact_url("http://a:b@h:81/p?page=2&token=x") == "http://h:81/p?page=2&token=[redacted]"


def test_log_processor_adds_ids_only_inside_a_span(tracing: Tracing) -> None:
    """add_trace_context adds W3C hex ids of the active span and nothing outside spans."""
    outside: EventDict = add_trace_context(None, "info", {"event": "x"})
    assert "trace_id" not in outside
    with tracing.tracer.start_as_current_span("op") as span:
        inside: EventDict = add_trace_context(None, "info", {"event": "x"})
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")


def test_nothing_exported_unless_configured() -> None:
    """Without OTEL_* configuration, or with exporter none or SDK disabled, nothing exports."""
    environments: list[dict[str, str]] = [
        {},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
    ]
    for environ in environments:
        tracing = setup_tracing("svc", environ)
        assert tracing.exporting is False, environ
        tracing.shutdown()
    configured = setup_tracing(
        "svc", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces"}
    )
    assert configured.exporting is True
    configured.shutdown()


def test_unsupported_configuration_is_refused() -> None:
    """A gRPC protocol or an unknown exporter is a configuration error, not a silent no-op."""
    with pytest.raises(ValueError, match="http/protobuf"):
        setup_tracing(
            "svc", {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        )
    with pytest.raises(ValueError, match="zipkin"):
        setup_tracing("svc", {"OTEL_TRACES_EXPORTER": "zipkin"})


def test_resource_from_environment(exporter: InMemorySpanExporter) -> None:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES shape the resource."""
    environ = {
        "OTEL_SERVICE_NAME": "proxy-eu",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod%20eu",
    }
    tracing = setup_tracing("modellix-proxy", environ, exporter=exporter)
    attrs = dict(tracing.provider.resource.attributes)
    assert attrs["service.name"] == "proxy-eu"
    assert attrs["deployment.environment"] == "prod eu"
    tracing.shutdown()
