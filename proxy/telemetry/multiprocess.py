"""Metrics of several worker processes behind one ``/metrics`` (``serve --workers N``).

The supervisor (``proxy.workers``) gives its workers a fresh ``PROMETHEUS_MULTIPROC_DIR``;
prometheus-client then keeps every counter, histogram and gauge value of a worker in a
memory-mapped file there, and the worker that serves ``/metrics`` (worker 0) merges the
files of all workers, dead ones included, so counters never go back when a worker is
restarted. Each gauge says how its workers' values combine (``multiprocess_mode``):

- ``livesum``: something each worker holds (ledger writes pending): summed over the
  live workers (a dead worker's share is dropped by ``mark_process_dead``);
- ``max`` / ``mostrecent``: a moment or reading any worker may take (a retention
  round's end, a balance reading under the reconciliation lease);
- :class:`SharedGauge`: a number every worker reads from the store the same way (ledger
  sums, budget standing, watcher backlog, queue depth). It stays in the process's memory:
  the serving worker exports its own copy. The files cannot express these: a label set
  dropped with ``clear()`` (a deleted budget, a model with no job left) would stay in
  them, and one re-created after ``clear()`` would resume from its old file value.

``Info`` (the build) is in-memory too. Without ``PROMETHEUS_MULTIPROC_DIR`` (one
process, the default on SQLite) nothing here changes anything. Exemplars are not kept
in multiprocess mode (prometheus-client does not store them in the files).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Info, values
from prometheus_client.metrics import Gauge, MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector


class SharedGauge(Gauge):
    """A gauge kept in this process's memory even in multiprocess mode (see the module)."""

    def _metric_init(self) -> None:
        self._value = values.MutexValue(  # type: ignore[no-untyped-call]
            self._type,
            self._name,
            self._name,
            self._labelnames,
            self._labelvalues,
            self._documentation,
        )

    def clear(self) -> None:
        """Drop every label set (prometheus-client warns in multiprocess mode; not here)."""
        with self._lock:
            self._metrics = {}


def in_memory(metric: object) -> bool:
    """Whether ``metric`` never reaches the multiprocess files (so worker 0 exports it)."""
    return isinstance(metric, (SharedGauge, Info))


class _InMemory:
    """A collector for the in-memory metrics of one process."""

    def __init__(self, metrics: Iterable[MetricWrapperBase]) -> None:
        self._metrics = tuple(metrics)

    def collect(self) -> Iterator[Metric]:
        for metric in self._metrics:
            yield from metric.collect()


def scrape_registry(metrics: object, directory: Path) -> CollectorRegistry:
    """What ``/metrics`` exports for the whole process group.

    Every worker's file-backed metrics merged from ``directory``, plus this process's
    in-memory ones (the attributes of ``metrics`` that are :func:`in_memory`).
    """
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    local = [m for m in vars(metrics).values() if in_memory(m)]
    registry.register(_InMemory(local))
    return registry
