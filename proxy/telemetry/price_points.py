"""Cost histogram bucket edges at the prices jobs really cost, derived from the price table.

A job's cost is one of a few price points (Hailuo: 6 s or 10 s at 768P or 1080P gives $0.324,
$0.54, $0.72, $1.20). Bucket edges elsewhere make ``histogram_quantile`` interpolate between
them and miss the real figures by up to half a bucket. Every priced model contributes each
duration its schema allows (or its default) at each priced resolution, and image counts 1 to 4.
Each price point ``p`` gets two edges, ``p - 0.001`` and ``p``: the bucket between them holds
exactly the jobs that cost ``p``, so a quantile that lands in it is ``p`` to a tenth of a cent.
At most ``MAX_EDGES`` edges (points are thinned evenly beyond that). Exact per-model P50/P95
also come from the ledger gauges; these buckets keep the histogram and its exemplars honest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from proxy.catalog.loader import Catalog
from proxy.catalog.spec import ModelSpec, Quantities
from proxy.config import PriceEntry
from proxy.jobs.pricing import estimate_micros
from proxy.money import sample

FALLBACK_BUCKETS_USD = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)
MAX_EDGES = 40
JUST_BELOW_MICROS = 1_000  # $0.001
IMAGE_COUNTS = (1, 2, 3, 4)


def _durations(spec: ModelSpec) -> list[float]:
    billing = spec.billing
    field = billing.duration_field
    schema: Any = spec.json_schema.get("properties", {}).get(field, {}) if field else {}
    allowed = schema.get("enum") if isinstance(schema, dict) else None
    values = [v for v in allowed or () if isinstance(v, int | float) and v > 0]
    if not values and billing.default_duration:
        values = [billing.default_duration]
    return [float(v) for v in values]


def _quantities(spec: ModelSpec, entry: PriceEntry) -> Iterable[Quantities]:
    resolutions: list[str | None] = list(entry.usd_by_resolution) or [None]
    unit = spec.billing.unit
    if entry.unit == "per_image":
        for resolution in resolutions:
            for count in IMAGE_COUNTS:
                yield Quantities(unit, None, resolution, count)
    elif entry.unit == "per_video":
        for resolution in resolutions:
            yield Quantities(unit, None, resolution, 1)
    else:
        for seconds in _durations(spec):
            for resolution in resolutions:
                yield Quantities(unit, seconds, resolution, 1)


def price_points(catalog: Catalog, prices: Mapping[str, PriceEntry]) -> list[int]:
    """Every cost in micro-dollars a priced model's job can have (sorted, distinct)."""
    points: set[int] = set()
    for spec in catalog:
        entry = prices.get(spec.slug)
        if entry is None:
            continue
        for quantities in _quantities(spec, entry):
            cost = estimate_micros(entry, quantities)
            if cost is not None and cost > 0:
                points.add(cost)
    return sorted(points)


def typical_points(catalog: Catalog, prices: Mapping[str, PriceEntry]) -> list[int]:
    """The cost of each priced model's default job (its body's defaults), sorted, distinct."""
    points = {
        cost
        for spec in catalog
        if (entry := prices.get(spec.slug)) is not None
        and (cost := estimate_micros(entry, spec.quantities({}))) is not None
        and cost > 0
    }
    return sorted(points)


def thin(points: list[int], limit: int, keep: Iterable[int] = ()) -> list[int]:
    """At most ``limit`` points: those in ``keep`` first, the rest spread evenly."""
    if len(points) <= limit:
        return points
    kept = sorted(set(keep) & set(points))[:limit]
    rest = [p for p in points if p not in kept]
    room = limit - len(kept)
    if room > 0 and rest:
        step = (len(rest) - 1) / max(room - 1, 1)
        kept += [rest[min(len(rest) - 1, round(i * step))] for i in range(room)]
    return sorted(set(kept))


def cost_buckets(catalog: Catalog, prices: Mapping[str, PriceEntry]) -> tuple[float, ...]:
    """Bucket edges (USD) for the job cost histogram; the generic ones if nothing is priced."""
    typical = typical_points(catalog, prices)
    points = thin(price_points(catalog, prices), MAX_EDGES // 2, keep=typical)
    if not points:
        return FALLBACK_BUCKETS_USD
    edges = {e for p in points for e in (p - JUST_BELOW_MICROS, p) if e > 0}
    return tuple(sample(e) for e in sorted(edges))
