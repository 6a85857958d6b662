"""W3C trace context: reading ``traceparent`` from requests, writing it onto outgoing calls.

The incoming ``traceparent``/``tracestate`` name a request's remote parent; every upstream
attempt carries its own; a job stores its submit span's ``traceparent`` so the job span and
the watcher's polls can link back to it. Metric exemplars and log lines name the active
span by the same W3C hex ids.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict, CIMultiDictProxy
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from structlog.typing import EventDict, WrappedLogger

_PROPAGATOR = TraceContextTextMapPropagator()


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


def span_context_of(context: Context) -> SpanContext:
    """The span context an OpenTelemetry context names (invalid when none)."""
    return trace.get_current_span(context).get_span_context()


def incoming_context(headers: Mapping[str, str]) -> Context:
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


def current_trace_headers() -> dict[str, str]:
    """The W3C headers the propagator injects for the active span (none without one)."""
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers)
    return headers


def trace_exemplar(context: SpanContext | None = None) -> dict[str, str] | None:
    """The exemplar labels (``trace_id``) for a metric sample: the given or active span's trace."""
    context = context if context is not None else trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": format(context.trace_id, "032x")}


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
