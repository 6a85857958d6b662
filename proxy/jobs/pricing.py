"""The price table: what a job is expected to cost. Pure functions, integer micro-dollars.

Billing units (Modellix bills video per output second, images per image;
some resellers bill a flat price per video):

- ``per_second``: seconds x price for the resolution (or a flat per-second price);
- ``per_video``:  one flat price per job;
- ``per_image``:  images x price per image.

A model without an entry, or a quantity the entry cannot price (an unknown
resolution, a duration that depends on the input video), is *unpriced*:
``None``. Unpriced jobs are served and counted; budgets refuse them.

The functions are total: hostile quantities (a negative, infinite, NaN or absurdly
large duration or count, as a refused body may carry) give ``None``, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, DecimalException

from proxy.catalog.spec import Quantities
from proxy.config import PriceEntry
from proxy.money import from_decimal

# Bounds of a quantity that can be priced at all: beyond them the input is not a real job.
MAX_SECONDS = 24 * 3600.0
MAX_COUNT = 10_000


def unit_price(entry: PriceEntry, resolution: str | None) -> Decimal | None:
    """The price for ``resolution`` (matched case-insensitively: ``720p`` is ``720P``)."""
    if entry.usd_by_resolution:
        if resolution is None:
            return entry.usd
        wanted = resolution.upper()
        for key, price in entry.usd_by_resolution.items():
            if key.upper() == wanted:
                return price
        return entry.usd
    return entry.usd


def estimate_micros(entry: PriceEntry | None, quantities: Quantities) -> int | None:
    """Expected cost of one job in micro-dollars, or ``None`` when it cannot be priced."""
    if entry is None:
        return None
    price = unit_price(entry, quantities.resolution)
    if price is None:
        return None
    try:
        if entry.unit == "per_video":
            return from_decimal(price)
        if entry.unit == "per_image":
            count = quantities.count
            return from_decimal(price * count) if 0 <= count <= MAX_COUNT else None
        seconds = quantities.seconds
        if seconds is None or not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS:
            return None
        return from_decimal(price * Decimal(str(seconds)))
    except DecimalException:  # a price table value Decimal cannot multiply (NaN, Infinity)
        return None


def lookup(table: Mapping[str, PriceEntry], slug: str | None) -> PriceEntry | None:
    return table.get(slug) if slug is not None else None


# Body fields read for a model the upstream lists but the catalog has no spec for.
LISTED_DURATION_FIELDS = ("duration",)
LISTED_RESOLUTION_FIELDS = ("resolution",)
LISTED_COUNT_FIELDS = ("n", "num_images", "image_num", "count")


def listed_quantities(entry: PriceEntry, payload: Mapping[str, object]) -> Quantities:
    """Billing quantities of a body for a model without a local spec (upstream-listed).

    Only the common fields can be known: ``duration`` (seconds), ``resolution``, and an
    image count from ``n``/``num_images``/``image_num``/``count`` (1 when absent). A
    ``per_second`` entry without a ``duration`` in the body is unpriced.
    """
    seconds: float | None = None
    for name in LISTED_DURATION_FIELDS:
        raw = payload.get(name)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            try:
                seconds = float(raw)
            except OverflowError:
                seconds = None
    resolution = next(
        (v for v in (payload.get(n) for n in LISTED_RESOLUTION_FIELDS) if isinstance(v, str)),
        None,
    )
    count = 1
    for name in LISTED_COUNT_FIELDS:
        raw = payload.get(name)
        if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
            count = raw
            break
    return Quantities(entry.unit, seconds, resolution, count)
