"""Sampled-out spans, made without the SDK: the same ids, flags and headers it would give."""

from __future__ import annotations

from multidict import CIMultiDict

from proxy.telemetry.spans import client_span, server_span
from proxy.telemetry.tracing import disabled_tracing

INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_an_incoming_trace_is_continued_upstream_with_a_new_span_id() -> None:
    """The upstream gets the client's trace id, a new span id, not sampled, its tracestate."""
    tracing = disabled_tracing()
    headers = CIMultiDict({"TraceParent": INCOMING, "tracestate": "vendor=abc"})
    with (
        server_span(tracing, method="GET", route="", path="/x", headers=headers) as server,
        client_span(tracing, method="GET", url="", operation="poll") as attempt,
    ):
        sent = attempt.headers
    context = server.get_span_context()
    assert context.trace_id == int("0af7651916cd43dd8448eb211c80319c", 16)
    assert not server.is_recording()
    version, trace_id, span_id, flags = sent["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "00")
    assert span_id not in {"b7ad6b7169203331", f"{context.span_id:016x}", "0" * 16}
    assert sent["tracestate"] == "vendor=abc"


def test_without_an_incoming_trace_a_new_one_starts() -> None:
    """No ``traceparent``: a valid new trace; a plain dict of headers works too."""
    tracing = disabled_tracing()
    with (
        server_span(tracing, method="GET", route="", path="/x", headers={}) as server,
        client_span(tracing, method="GET", url="", operation="poll") as attempt,
    ):
        sent = attempt.headers
    context = server.get_span_context()
    assert context.is_valid
    assert sent["traceparent"].split("-")[1] == f"{context.trace_id:032x}"
    assert "tracestate" not in sent


def test_an_invalid_traceparent_starts_a_new_trace() -> None:
    """A malformed ``traceparent`` is ignored, as the W3C propagator ignores it."""
    tracing = disabled_tracing()
    headers = {"traceparent": "00-" + "0" * 32 + "-b7ad6b7169203331-01"}
    with server_span(tracing, method="GET", route="", path="/x", headers=headers) as server:
        pass
    assert server.get_span_context().is_valid
    assert server.get_span_context().trace_id != 0
