"""The proxy's spans: one SERVER span per request, one CLIENT span per upstream attempt,
one INTERNAL span per watcher poll, and one INTERNAL job span per job.

The job span is made at the terminal state with the recorded submit time and linked to the
submit span, as are the watcher's polls. Attribute values derived from headers, URLs and
callers pass through ``proxy.telemetry.redaction``; exception messages are never recorded.
When nothing exports, no span is made: a request's ids are a ``LeanTrace``
(``proxy.telemetry.scope``) and each upstream attempt's a child of it (``lean_attempt``),
for log lines and the ``traceparent`` sent upstream; nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
)
from opentelemetry.util.types import AttributeValue

from proxy.telemetry.redaction import redact_text, redact_url, redact_value, safe_attributes
from proxy.telemetry.scope import LeanTrace, current_trace, trace_headers
from proxy.telemetry.traceparent import (
    current_trace_headers,
    incoming_context,
    parse_traceparent,
)
from proxy.telemetry.tracing import Tracing

JOB_SPAN_NAME = "modellix.job"
WATCHER_POLL_SPAN_NAME = "modellix.watcher.poll"
FAILED_JOB_STATUSES = frozenset({"failed", "expired", "unknown"})
_NANOS_PER_MICRO = 1_000
_MICROS_PER_SECOND = 10**6


def epoch_ns(seconds: float) -> int:
    """Epoch seconds as span nanoseconds, rounded to the microsecond (exact for epoch floats)."""
    return round(seconds * _MICROS_PER_SECOND) * _NANOS_PER_MICRO


@contextmanager
def server_span(
    tracing: Tracing,
    *,
    method: str,
    route: str,
    path: str,
    headers: Mapping[str, str],
    scheme: str = "http",
    server_address: str | None = None,
    server_port: int | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """Make the recording SERVER span for an incoming request current, continuing its
    ``traceparent`` (the middleware calls it only when traces are exported; otherwise a
    request's ids are a ``LeanTrace``)."""
    parent = incoming_context(headers)
    attrs: dict[str, AttributeValue] = {
        "http.request.method": method,
        "url.path": redact_text(path),  # a key pasted into a path must not reach a trace
        "url.scheme": scheme,
        **safe_attributes(attributes),
    }
    if route:  # no matched route: the span is named by the method alone (semconv)
        attrs["http.route"] = route
    if server_address:
        attrs["server.address"] = server_address
    if server_port is not None:
        attrs["server.port"] = server_port
    carrier = {k.lower(): v for k, v in headers.items()}
    if "user-agent" in carrier:
        attrs["user_agent.original"] = redact_value("user-agent", carrier["user-agent"])
    with tracing.tracer.start_as_current_span(
        f"{method} {route}" if route else method,
        context=parent,
        kind=SpanKind.SERVER,
        attributes=attrs,
        # The caller sets the status from the answer (aiohttp's 404s travel as exceptions,
        # and a 4xx is no server error); exception messages are never recorded.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


class UpstreamAttempt(NamedTuple):
    """A CLIENT span (``INVALID_SPAN`` when sampled out) and the trace headers to send with
    that attempt."""

    span: Span
    headers: dict[str, str]


def lean_attempt(tracing: Tracing) -> UpstreamAttempt:
    """A sampled-out attempt (nothing exports): a child id for the traceparent sent
    upstream, nothing recorded, nothing made current (nothing reads it: no exemplar, no
    child span; a log line written during the attempt names the request's span).

    The parent: the request being served (its lean ids), else the active span (a
    watcher's poll), else none (a new trace).
    """
    return UpstreamAttempt(INVALID_SPAN, lean_trace_headers(tracing))


def lean_trace_headers(tracing: Tracing) -> dict[str, str]:
    """The trace headers of a sampled-out attempt (``lean_attempt``'s), alone: what the
    upstream client sends when nothing exports."""
    ids = tracing.provider.id_generator
    parent = current_trace()
    if parent is None:  # not serving a request: the active span's child, else a new trace
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            return LeanTrace.child_of(context, ids).headers()
        return LeanTrace(ids.generate_trace_id(), ids.generate_span_id()).headers()
    # The request's child: LeanTrace.child_of(parent, ids).headers() without the object
    return trace_headers(parent.trace_id, ids.generate_span_id(), parent.state)


@contextmanager
def client_span(
    tracing: Tracing, *, method: str, url: str, operation: str, resend_count: int = 0
) -> Iterator[UpstreamAttempt]:
    """Make a CLIENT span for one upstream attempt current; send ``attempt.headers`` with it."""
    if not tracing.exporting:
        yield lean_attempt(tracing)
        return
    parts = urlsplit(url)
    attrs: dict[str, AttributeValue] = {
        "http.request.method": method,
        "url.full": redact_url(url),
        "server.address": parts.hostname or "",
        "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        "modellix.upstream.operation": operation,
    }
    if resend_count:
        attrs["http.request.resend_count"] = resend_count
    # Exceptions are not recorded: their messages and chained causes may carry URLs; the
    # caller marks failures with ``set_error`` instead.
    with tracing.tracer.start_as_current_span(
        method,
        kind=SpanKind.CLIENT,
        attributes=attrs,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield UpstreamAttempt(span, current_trace_headers())


def set_response_status(span: Span, status_code: int, *, server: bool) -> None:
    """Record the response status; 5xx (and 4xx on client spans) mark the span as an error."""
    span.set_attribute("http.response.status_code", status_code)
    if status_code >= 500 or (not server and status_code >= 400):
        span.set_attribute("error.type", str(status_code))
        span.set_status(Status(StatusCode.ERROR))


def set_error(span: Span, error_type: str) -> None:
    """Mark a span as failed with a low-cardinality ``error.type`` (no message, no traceback)."""
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR))


def _submit_links(submit_traceparent: str | None) -> list[Link]:
    """A link to the submit request's span, when its stored ``traceparent`` parses."""
    submit = parse_traceparent(submit_traceparent)
    return [Link(submit, {"modellix.link.reason": "submit"})] if submit else []


def record_job_span(
    tracing: Tracing,
    *,
    task_id: str,
    submitted_at: float,
    terminal_at: float,
    status: str,
    model_pinned: str,
    model_alias: str | None = None,
    estimated_cost_usd: float | None = None,
    final_cost_usd: float | None = None,
    attempts: int = 1,
    polls: int = 0,
    submit_traceparent: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> SpanContext:
    """Emit the job span (submit to terminal, epoch seconds) linked to the submit span."""
    attrs: dict[str, AttributeValue] = {
        "modellix.task_id": task_id,
        "modellix.model.pinned": model_pinned,
        "modellix.job.status": status,
        "modellix.job.attempts": attempts,
        "modellix.job.polls": polls,
        "modellix.job.duration_s": max(terminal_at - submitted_at, 0.0),
        **safe_attributes(attributes),
    }
    optional = {
        "modellix.model.alias": model_alias,
        "modellix.cost.estimated_usd": estimated_cost_usd,
        "modellix.cost.final_usd": final_cost_usd,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    start_ns = epoch_ns(submitted_at)
    span = tracing.tracer.start_span(
        JOB_SPAN_NAME,
        context=Context(),
        kind=SpanKind.INTERNAL,
        attributes=attrs,
        links=_submit_links(submit_traceparent),
        start_time=start_ns,
    )
    if status in FAILED_JOB_STATUSES:
        span.set_status(Status(StatusCode.ERROR, f"job {status}"))
    span.end(end_time=max(epoch_ns(terminal_at), start_ns))
    return span.get_span_context()


@contextmanager
def watcher_poll_span(
    tracing: Tracing, *, task_id: str, model: str, attempt: int, submit_traceparent: str | None
) -> Iterator[Span]:
    """Make the watcher's poll of one job current (its upstream attempts become children).

    A new trace per poll, carrying the task id and linked to the submit request's span: the
    job span (written at terminal, with the recorded start) links to the same span, so a
    job's submit, polls and job span are one link apart.
    """
    attrs: dict[str, AttributeValue] = {
        "modellix.task_id": task_id,
        "modellix.model.pinned": model,
        "modellix.poll.source": "watcher",
        "modellix.poll.attempt": attempt,
    }
    with tracing.tracer.start_as_current_span(
        WATCHER_POLL_SPAN_NAME,
        context=Context(),
        kind=SpanKind.INTERNAL,
        attributes=attrs,
        links=_submit_links(submit_traceparent),
        record_exception=False,
    ) as span:
        yield span
