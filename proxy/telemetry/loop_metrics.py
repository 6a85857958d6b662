"""Counters and histograms of the request path, updated without a lock.

prometheus-client guards each value with a lock and finds a histogram's bucket by walking
its bounds one by one. A forwarded poll updates three counters and three histograms: that
was about 4 % of the proxy's instructions per poll (``bench.instructions``). The metrics
here are updated only on the event loop's thread (the middleware, the poll handler, the
upstream client and the watcher all run there), so one process needs no lock for them:
:class:`LoopCounter` and :class:`LoopHistogram` keep plain floats, and the histogram finds
its bucket by bisection. A scrape reads each float whole, as prometheus-client's own
values are read (one at a time, not a histogram at once).

They are prometheus-client's ``Counter`` and ``Histogram`` otherwise: the same names,
labels, samples and checks. An exemplar, a negative count or a NaN goes through
prometheus-client's own code (which keeps the exemplar, or refuses the count, or counts the
NaN in no bucket), onto the same plain values. In multiprocess mode (``serve --workers N``,
``proxy.telemetry.multiprocess``) their values are prometheus-client's file-backed ones,
and every update takes its path.

Never update these from another thread: two threads adding at once could lose an addition.
"""

from __future__ import annotations

from bisect import bisect_left

from prometheus_client import Counter, Histogram, values
from prometheus_client.samples import Exemplar


class PlainValue:
    """prometheus-client's ``MutexValue`` without its lock (one thread updates it)."""

    __slots__ = ("_exemplar", "_value")

    def __init__(self) -> None:
        self._value = 0.0
        self._exemplar: Exemplar | None = None

    def inc(self, amount: float) -> None:
        self._value += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self._value = value

    def set_exemplar(self, exemplar: Exemplar) -> None:
        self._exemplar = exemplar

    def get(self) -> float:
        return self._value

    def get_exemplar(self) -> Exemplar | None:
        return self._exemplar


def _in_memory() -> bool:
    """Whether prometheus-client keeps values in this process's memory (no multiprocess
    directory when it was imported): then a value of ours replaces its locked one."""
    return values.ValueClass is values.MutexValue


class LoopCounter(Counter):
    """A ``Counter`` whose values (each label set's) are updated on the event loop only."""

    def _metric_init(self) -> None:
        super()._metric_init()
        if _in_memory():
            self._value = PlainValue()

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        # A labelled parent has no value of its own: its class's None, refused by the parent
        # class as prometheus-client refuses it.
        value = self._value
        if type(value) is PlainValue and amount >= 0 and not exemplar:
            value._value += amount
        else:
            super().inc(amount, exemplar)

    _value: PlainValue | None = None


class LoopHistogram(Histogram):
    """A ``Histogram`` whose values (each label set's) are updated on the event loop only."""

    def _metric_init(self) -> None:
        super()._metric_init()
        if _in_memory():
            self._sum = PlainValue()
            self._buckets = [PlainValue() for _ in self._upper_bounds]

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        total = self._sum
        # ``amount == amount``: not a NaN (which bisection would put in the first bucket).
        if type(total) is PlainValue and not exemplar and amount == amount:
            total._value += amount
            # The first bound at or above ``amount``: prometheus-client's bucket (the last
            # bound is +Inf, so there is always one).
            self._buckets[bisect_left(self._upper_bounds, amount)]._value += 1
        else:
            super().observe(amount, exemplar)

    _sum: PlainValue | None = None
