"""The display price the upstream's model list gives a model, read into exact figures.

Items of ``GET /api/v1/models`` may carry ``price``: ``{"fixed": <number>, "unit": <text>}``
or ``{"min": <number>, "max": <number>, "unit": <text>}``. Units the proxy can multiply:

- ``$/sec`` (and ``$/s``, ``$/second``): per second of output (or of input audio);
- ``$/img`` (and ``$/image``): per image;
- ``$/M chars`` (and ``$/1M chars``): per million characters of text.

Anything else (an unknown unit, a missing, negative, non-finite or absurd figure, ``min``
above ``max``) is no price at all: the model stays unpriced rather than mispriced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

ListUnit = Literal["per_second", "per_image", "per_million_chars"]
# Far above any real unit price (USD); a larger figure is not a price the proxy trusts.
MAX_UNIT_PRICE = Decimal(100_000)

_UNITS: Mapping[str, ListUnit] = {
    "$/sec": "per_second",
    "$/s": "per_second",
    "$/second": "per_second",
    "$/img": "per_image",
    "$/image": "per_image",
    "$/m chars": "per_million_chars",
    "$/1m chars": "per_million_chars",
    "$/m characters": "per_million_chars",
}


@dataclass(frozen=True, slots=True)
class ListPrice:
    """A listed unit price: ``low == high`` for a fixed price; ``shown`` is the unit as listed."""

    low: Decimal
    high: Decimal
    unit: ListUnit
    shown: str

    @property
    def fixed(self) -> bool:
        return self.low == self.high


def _figure(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        figure = Decimal(str(value))
    except InvalidOperation:
        return None
    if not figure.is_finite() or not 0 <= figure <= MAX_UNIT_PRICE:
        return None
    return figure


def parse_list_price(item: Mapping[str, Any] | None) -> ListPrice | None:
    """The price of one model-list item, or ``None`` when it has none the proxy can use."""
    if item is None:
        return None
    price = item.get("price")
    if not isinstance(price, Mapping):
        return None
    raw_unit = price.get("unit")
    if not isinstance(raw_unit, str):
        return None
    unit = _UNITS.get(" ".join(raw_unit.lower().split()))
    if unit is None:
        return None
    if "fixed" in price:
        fixed = _figure(price.get("fixed"))
        return None if fixed is None else ListPrice(fixed, fixed, unit, raw_unit)
    low, high = _figure(price.get("min")), _figure(price.get("max"))
    if low is None or high is None or low > high:
        return None
    return ListPrice(low, high, unit, raw_unit)


def prices_digest(items: Iterable[Mapping[str, Any]]) -> str:
    """A short digest of every listed price: the list's part of a job's price-table version."""
    table = {
        str(item.get("slug")): item.get("price")
        for item in items
        if isinstance(item.get("price"), Mapping)
    }
    text = json.dumps(table, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
