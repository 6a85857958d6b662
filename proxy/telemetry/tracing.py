"""OpenTelemetry traces: provider setup from ``OTEL_*`` variables and the proxy's span helpers.

SERVER span per request (stable HTTP semconv names, incoming W3C ``traceparent`` continued),
CLIENT span per upstream attempt (its ``traceparent`` goes upstream), and one INTERNAL job span
per job, made at the terminal state with the recorded submit time and linked to the submit span.
Nothing is exported unless ``OTEL_TRACES_EXPORTER`` or an OTLP endpoint says so (OTLP over
HTTP/protobuf). Header- and URL-derived attribute values pass through the redaction helpers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from multidict import CIMultiDict, CIMultiDictProxy
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.re import parse_env_headers
from opentelemetry.util.types import AttributeValue
from structlog.typing import EventDict, WrappedLogger

from proxy.telemetry.redaction import redact_text

SCOPE = "modellix-proxy"
REDACTED = "[REDACTED]"
JOB_SPAN_NAME = "modellix.job"
WATCHER_POLL_SPAN_NAME = "modellix.watcher.poll"
FAILED_JOB_STATUSES = frozenset({"failed", "expired", "unknown"})
_SENSITIVE = re.compile(r"auth|key|token|secret|passw|cookie|signature|credential", re.I)
_NOT_SECRET = frozenset({"idempotency-key"})
_BEARER = re.compile(r"\b(bearer|basic)\s+\S+", re.I)
_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass
class Tracing:
    """The proxy's tracer provider and tracer; ``exporting`` says whether spans leave."""

    provider: TracerProvider
    exporting: bool
    tracer: trace.Tracer = field(init=False)

    def __post_init__(self) -> None:
        self.tracer = self.provider.get_tracer(SCOPE)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export finished spans now (blocking: from a loop, run it in a thread)."""
        return self.provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop every span processor and exporter."""
        self.provider.shutdown()


def setup_tracing(
    service_name: str,
    environ: Mapping[str, str],
    *,
    exporter: SpanExporter | None = None,
    service_version: str | None = None,
) -> Tracing:
    """Build a provider from ``environ``; an explicit ``exporter`` (tests) exports synchronously."""
    disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    attributes: dict[str, AttributeValue] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
    }
    for item in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = unquote(value.strip())
    if service_version is not None:
        attributes["service.version"] = service_version
    attributes["service.name"] = environ.get("OTEL_SERVICE_NAME") or service_name
    exporters = [] if disabled or exporter is not None else _exporters(environ)
    # With nowhere to send spans, sample none: spans still carry valid ids (for log lines
    # and the traceparent sent upstream) but record nothing, which keeps them cheap.
    off = disabled or (exporter is None and not exporters)
    sampler = ALWAYS_OFF if off else _sampler(environ)
    provider = TracerProvider(resource=Resource(attributes), sampler=sampler)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return Tracing(provider, exporting=True)
    for configured in exporters:
        provider.add_span_processor(BatchSpanProcessor(configured))
    return Tracing(provider, exporting=bool(exporters))


def disabled_tracing() -> Tracing:
    """Tracing that samples nothing and exports nothing (parts built without a provider)."""
    return Tracing(TracerProvider(sampler=ALWAYS_OFF), exporting=False)


def _sampler(environ: Mapping[str, str]) -> Sampler:
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    ratio = float(environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0") or "1.0")
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(TraceIdRatioBased(ratio)),
    }
    if name not in samplers:
        raise ValueError(f"unsupported OTEL_TRACES_SAMPLER {name!r}")
    return samplers[name]


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    endpoint = _pick(environ, "ENDPOINT")
    raw = environ.get("OTEL_TRACES_EXPORTER", "otlp" if endpoint else "none")
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    if "none" in names:
        return []
    if unknown := set(names) - {"otlp", "console"}:
        raise ValueError(
            f"unsupported OTEL_TRACES_EXPORTER {sorted(unknown)} (otlp, console, none)"
        )
    return [_otlp_exporter(environ) if n == "otlp" else ConsoleSpanExporter() for n in names]


def _pick(environ: Mapping[str, str], suffix: str) -> str | None:
    traces = environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{suffix}")
    return traces or environ.get(f"OTEL_EXPORTER_OTLP_{suffix}")


def _otlp_exporter(environ: Mapping[str, str]) -> OTLPSpanExporter:
    protocol = _pick(environ, "PROTOCOL") or "http/protobuf"
    if protocol != "http/protobuf":
        raise ValueError(f"unsupported OTLP protocol {protocol!r}: only http/protobuf")
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318"
        endpoint = base.rstrip("/") + "/v1/traces"
    timeout_ms = _pick(environ, "TIMEOUT")  # milliseconds, as the specification says
    return OTLPSpanExporter(
        endpoint=endpoint,
        certificate_file=_pick(environ, "CERTIFICATE"),
        headers=parse_env_headers(_pick(environ, "HEADERS") or "", liberal=True),
        timeout=float(timeout_ms) / 1000 if timeout_ms else None,
    )


# --- redaction ---------------------------------------------------------------------------


def is_sensitive(name: str) -> bool:
    """Whether a header, query parameter or attribute name may carry a secret."""
    return name.lower() not in _NOT_SECRET and bool(_SENSITIVE.search(name))


def redact_value(name: str, value: str) -> str:
    """The value as safe to record: hidden for sensitive names, bearer tokens and keys masked."""
    if is_sensitive(name):
        return REDACTED
    return redact_text(_BEARER.sub(rf"\1 {REDACTED}", value))


def header_attributes(
    headers: Mapping[str, str], names: Iterable[str], prefix: str = "http.request.header."
) -> dict[str, AttributeValue]:
    """Semantic-convention header attributes for the allow-listed ``names``, redacted."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return {
        f"{prefix}{n.lower()}": (redact_value(n, lowered[n.lower()]),)
        for n in names
        if n.lower() in lowered
    }


def redact_url(url: str) -> str:
    """The URL without user info and with sensitive query parameters masked."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode(
        [(k, redact_value(k, v)) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="[]",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _safe(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    safe: dict[str, AttributeValue] = {}
    for key, value in (attributes or {}).items():
        name = key.rpartition(".")[2]
        if is_sensitive(name):
            safe[key] = REDACTED if isinstance(value, str | bool | int | float) else (REDACTED,)
        else:
            safe[key] = redact_value(name, value) if isinstance(value, str) else value
    return safe


# --- W3C trace context -------------------------------------------------------------------


def format_traceparent(context: SpanContext) -> str:
    """The W3C ``traceparent`` header value for a span context."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def current_traceparent() -> str | None:
    """The ``traceparent`` of the active span (store it on the job at submit), if any."""
    context = trace.get_current_span().get_span_context()
    return format_traceparent(context) if context.is_valid else None


def parse_traceparent(value: str | None) -> SpanContext | None:
    """The (remote) span context a ``traceparent`` string names, or None if invalid."""
    if not value:
        return None
    extracted = _PROPAGATOR.extract({"traceparent": value})
    context = trace.get_current_span(extracted).get_span_context()
    return context if context.is_valid else None


# --- spans -------------------------------------------------------------------------------


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
    """Make the SERVER span for an incoming request current, continuing its ``traceparent``."""
    if not tracing.exporting:
        # Sampled out: ids only (for logs and the traceparent upstream), no attributes.
        parent = trace.get_current_span(_incoming(headers)).get_span_context()
        lean = _sampled_out(tracing, parent)
        token = otel_context.attach(trace.set_span_in_context(lean))  # as the SDK's use_span
        try:
            yield lean
        finally:
            otel_context.detach(token)
        return
    carrier = {k.lower(): v for k, v in headers.items()}
    attrs: dict[str, AttributeValue] = {
        "http.request.method": method,
        "url.path": redact_text(path),  # a key pasted into a path must not reach a trace
        "url.scheme": scheme,
        **_safe(attributes),
    }
    if route:  # no matched route: the span is named by the method alone (semconv)
        attrs["http.route"] = route
    if server_address:
        attrs["server.address"] = server_address
    if server_port is not None:
        attrs["server.port"] = server_port
    if "user-agent" in carrier:
        attrs["user_agent.original"] = redact_value("user-agent", carrier["user-agent"])
    with tracing.tracer.start_as_current_span(
        f"{method} {route}" if route else method,
        context=_PROPAGATOR.extract(carrier),
        kind=SpanKind.SERVER,
        attributes=attrs,
        # The caller sets the status from the answer (aiohttp's 404s travel as exceptions,
        # and a 4xx is no server error); exception messages are never recorded.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def _incoming(headers: Mapping[str, str]) -> Context:
    """The remote parent an incoming request names (``traceparent``/``tracestate``), if any."""
    if isinstance(headers, CIMultiDictProxy | CIMultiDict):
        carrier = {
            name: values[-1]  # the last one, as a dict of the headers would keep
            for name in ("traceparent", "tracestate")
            if (values := headers.getall(name, None))
        }
    else:
        carrier = {k.lower(): v for k, v in headers.items()}
    return _PROPAGATOR.extract(carrier) if carrier else Context()


_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


def _sampled_out(tracing: Tracing, parent: SpanContext) -> NonRecordingSpan:
    """A sampled-out span made without the SDK's per-span work (sampler, attributes).

    The same ids and flags the SDK's ``ALWAYS_OFF`` sampler gives: the parent's trace id
    and trace state (a new trace without a valid parent), a new span id, not sampled.
    """
    ids = tracing.provider.id_generator
    if parent.is_valid:
        trace_id, state = parent.trace_id, parent.trace_state
    else:
        trace_id, state = ids.generate_trace_id(), None
    return NonRecordingSpan(
        SpanContext(
            trace_id,
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=_NOT_SAMPLED,
            trace_state=state,
        )
    )


def _trace_headers(context: SpanContext) -> dict[str, str]:
    """What the W3C propagator would inject for ``context``."""
    headers = {"traceparent": format_traceparent(context)}
    if context.trace_state:
        headers["tracestate"] = context.trace_state.to_header()
    return headers


@dataclass(frozen=True)
class UpstreamAttempt:
    """A CLIENT span and the trace headers to send with that attempt."""

    span: Span
    headers: dict[str, str]


@contextmanager
def client_span(
    tracing: Tracing, *, method: str, url: str, operation: str, resend_count: int = 0
) -> Iterator[UpstreamAttempt]:
    """Make a CLIENT span for one upstream attempt current; send ``attempt.headers`` with it."""
    if not tracing.exporting:
        # Sampled out: a child id for the traceparent sent upstream, nothing recorded, and
        # not made current (nothing reads it: no exemplar, no child span; a log line
        # written during the attempt names the request's span).
        lean = _sampled_out(tracing, trace.get_current_span().get_span_context())
        yield UpstreamAttempt(lean, _trace_headers(lean.get_span_context()))
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
        headers: dict[str, str] = {}
        _PROPAGATOR.inject(headers)
        yield UpstreamAttempt(span, headers)


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


def trace_exemplar(context: SpanContext | None = None) -> dict[str, str] | None:
    """The exemplar labels (``trace_id``) for a metric sample: the given or active span's trace."""
    context = context if context is not None else trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": format(context.trace_id, "032x")}


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
        **_safe(attributes),
    }
    optional = {
        "modellix.model.alias": model_alias,
        "modellix.cost.estimated_usd": estimated_cost_usd,
        "modellix.cost.final_usd": final_cost_usd,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    submit = parse_traceparent(submit_traceparent)
    links = [Link(submit, {"modellix.link.reason": "submit"})] if submit else []
    start_ns = round(submitted_at * 1_000_000) * 1_000  # microseconds: exact for epoch floats
    span = tracing.tracer.start_span(
        JOB_SPAN_NAME,
        context=Context(),
        kind=SpanKind.INTERNAL,
        attributes=attrs,
        links=links,
        start_time=start_ns,
    )
    if status in FAILED_JOB_STATUSES:
        span.set_status(Status(StatusCode.ERROR, f"job {status}"))
    span.end(end_time=max(round(terminal_at * 1_000_000) * 1_000, start_ns))
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
    submit = parse_traceparent(submit_traceparent)
    links = [Link(submit, {"modellix.link.reason": "submit"})] if submit else []
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
        links=links,
        record_exception=False,
    ) as span:
        yield span


def span_ids(context: SpanContext | None) -> dict[str, str]:
    """``trace_id`` and ``span_id`` (W3C hex) of a span context, for a log line; none if invalid."""
    if context is None or not context.is_valid:
        return {}
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def add_trace_context(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: add W3C hex ``trace_id`` and ``span_id`` of the active span."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict
