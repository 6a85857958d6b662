"""The request path's lock-free counters and histograms: the same samples as
prometheus-client's own for the same updates, its refusals, and plain values only in a
single process (the multiprocess case: ``tests/e2e/test_workers_metrics.py``)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram

from proxy.telemetry.loop_metrics import LoopCounter, LoopHistogram, PlainValue
from proxy.telemetry.metrics import LATENCY_BUCKETS, Metrics

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1)


def _samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float, object]]:
    """Every sample with its exemplar's labels and value (not its time)."""
    out: list[tuple[str, dict[str, str], float, object]] = []
    for family in registry.collect():
        for s in family.samples:
            if s.name.endswith("_created"):  # a process-wide switch of prometheus-client's
                continue
            ex = None if s.exemplar is None else (s.exemplar.labels, s.exemplar.value)
            value = "nan" if math.isnan(s.value) else s.value
            out.append((s.name, s.labels, value, ex))  # type: ignore[arg-type]
    return out


def _pair(
    loop_cls: type[Counter] | type[Histogram], cls: type[Counter] | type[Histogram], **kw: object
) -> tuple[CollectorRegistry, Counter | Histogram, CollectorRegistry, Counter | Histogram]:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    a = loop_cls("m", "help", ["route"], registry=ours, **kw)  # type: ignore[arg-type]
    b = cls("m", "help", ["route"], registry=theirs, **kw)  # type: ignore[arg-type]
    return ours, a, theirs, b


observations = st.lists(
    st.one_of(
        st.sampled_from([*BOUNDS, 0.0, -1.0, math.inf, math.nan]),
        st.floats(min_value=-1, max_value=1, allow_nan=False),
    ),
    max_size=40,
)


@given(observations, st.lists(st.booleans(), max_size=40))
def test_histogram_samples_equal_prometheus_clients(values: list[float], marks: list[bool]) -> None:
    """Bucket counts (a value on a bound counts in it), sum, count and exemplars as
    prometheus-client's own, with values on every bound, below and above them, a NaN."""
    ours, a, theirs, b = _pair(LoopHistogram, Histogram, buckets=BOUNDS)
    for i, value in enumerate(values):
        exemplar = {"trace_id": f"{i:032x}"} if i < len(marks) and marks[i] else None
        for metric in (a, b):
            metric.labels("poll").observe(value, exemplar)  # type: ignore[union-attr]
    assert _samples(ours) == _samples(theirs)


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=40))
def test_counter_samples_equal_prometheus_clients(amounts: list[float]) -> None:
    ours, a, theirs, b = _pair(LoopCounter, Counter)
    for amount in amounts:
        for metric in (a, b):
            metric.labels("poll").inc(amount)  # type: ignore[union-attr]
    a.labels("submit").inc(1, {"trace_id": "ab"})  # type: ignore[union-attr]
    b.labels("submit").inc(1, {"trace_id": "ab"})  # type: ignore[union-attr]
    assert _samples(ours) == _samples(theirs)
    assert any(exemplar for *_, exemplar in _samples(ours))  # the exemplar kept


def test_refusals_are_prometheus_clients() -> None:
    """A negative count, and an update of a labelled metric without its labels."""
    registry = CollectorRegistry()
    counter = LoopCounter("c", "help", ["route"], registry=registry)
    histogram = LoopHistogram("h", "help", ["route"], registry=registry, buckets=BOUNDS)
    with pytest.raises(ValueError, match="non-negative"):
        counter.labels("poll").inc(-1)
    with pytest.raises(ValueError, match="missing label values"):
        counter.inc()
    with pytest.raises(ValueError, match="missing label values"):
        histogram.observe(0.1)
    # nothing counted by either: only the child made for the negative count, at zero
    assert [value for _, _, value, _ in _samples(registry)] == [0.0]


def test_the_request_paths_metrics_are_lock_free_in_one_process() -> None:
    """The six updated on every forwarded poll keep plain values; the others keep
    prometheus-client's locked ones."""
    m = Metrics()
    assert type(m.http_requests.labels("poll", "GET", "200")._value) is PlainValue
    assert type(m.upstream_requests.labels("poll", "2xx")._value) is PlainValue
    assert type(m.job_polls.labels("client")._value) is PlainValue
    for histogram in (m.http_duration, m.overhead, m.upstream_duration):
        child = histogram.labels("poll")
        assert type(child._sum) is PlainValue
        assert {type(b) for b in child._buckets} == {PlainValue}
    assert type(m.upstream_retries.labels("poll", "5xx")._value) is not PlainValue
    overhead = m.overhead.labels("poll")
    overhead.observe(LATENCY_BUCKETS[0])
    assert (
        m.registry.get_sample_value(
            "modellix_proxy_overhead_seconds_bucket",
            {"route": "poll", "le": str(LATENCY_BUCKETS[0])},
        )
        == 1
    )
