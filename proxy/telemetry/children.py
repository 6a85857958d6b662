"""Metric children resolved once per label set (``labels()`` costs a lock and a dict walk)."""

from __future__ import annotations

from functools import lru_cache
from typing import TypeVar

from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)


@lru_cache(maxsize=4096)
def child(metric: M, *labels: str) -> M:
    """``metric.labels(*labels)``, cached: for counters and histograms never ``remove()``d."""
    return metric.labels(*labels)
