"""Sampled-out requests' ids, made without the SDK: the ids, flags and headers it would give."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from multidict import CIMultiDict

from proxy.context import RequestContext, RouteKind
from proxy.telemetry import scope
from proxy.telemetry.scope import LeanTrace
from proxy.telemetry.spans import lean_attempt
from proxy.telemetry.tracing import disabled_tracing

INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACING = disabled_tracing()


@contextmanager
def serving(headers: Mapping[str, str]) -> Iterator[LeanTrace]:
    """A request being served with ``headers``, its ids made as the middleware makes them."""
    ctx = RequestContext("r-1", "r-1", RouteKind.POLL, 0.0, 0.0, headers=headers)
    ctx.trace = LeanTrace.of_request(TRACING.provider.id_generator, headers)
    token = scope.enter(ctx)
    try:
        yield ctx.trace
    finally:
        scope.leave(token)


def test_an_incoming_trace_is_continued_upstream_with_a_new_span_id() -> None:
    """The upstream gets the client's trace id, a new span id, not sampled, its tracestate."""
    headers = CIMultiDict({"TraceParent": INCOMING, "tracestate": "vendor=abc"})
    with serving(headers) as request:
        sent = lean_attempt(TRACING).headers
    assert request.trace_id == int("0af7651916cd43dd8448eb211c80319c", 16)
    version, trace_id, span_id, flags = sent["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "00")
    assert span_id not in {"b7ad6b7169203331", f"{request.span_id:016x}", "0" * 16}
    assert sent["tracestate"] == "vendor=abc"


def test_without_an_incoming_trace_a_new_one_starts() -> None:
    """No ``traceparent``: a valid new trace, which the upstream attempt carries on."""
    with serving(CIMultiDict()) as request:
        sent = lean_attempt(TRACING).headers
    assert request.trace_id != 0
    assert request.span_id != 0
    assert sent["traceparent"].split("-")[1] == f"{request.trace_id:032x}"
    assert "tracestate" not in sent


def test_an_invalid_traceparent_starts_a_new_trace() -> None:
    """A malformed ``traceparent`` (an all-zero trace id) is ignored, as the W3C
    propagator ignores it."""
    with serving(CIMultiDict({"traceparent": "00-" + "0" * 32 + "-b7ad6b7169203331-01"})) as r:
        pass
    assert r.trace_id != 0


def test_outside_a_request_the_active_span_is_the_parent() -> None:
    """No request being served (a watcher's poll): the attempt continues the active span's
    trace, and without one it starts its own."""
    with TRACING.tracer.start_as_current_span("modellix.watcher.poll") as active:
        sent = lean_attempt(TRACING).headers
    assert sent["traceparent"].split("-")[1] == f"{active.get_span_context().trace_id:032x}"
    alone = lean_attempt(TRACING).headers["traceparent"].split("-")
    assert alone[1] != f"{active.get_span_context().trace_id:032x}"
    assert alone[1] != "0" * 32
