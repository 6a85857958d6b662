"""What a body will be billed on, in the unit of a listed price: seconds, images, characters.

Read from the body, a field absent taking the model's default: the catalog spec's (its
billing rules and defaults) or, for a model without one, the published schema's (when the
schema fetcher gives one). What cannot be known (a duration that follows an input video or
audio, a body without one and no default) is *bounded*: between 0 and
``pricing.input_bound_seconds``, so a reservation never falls short of a real job.

Every function is total: hostile values (negative, infinite, NaN, huge) give ``None`` or
the bound, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from proxy.catalog.list_prices import ListUnit
from proxy.catalog.spec import ModelSpec

CHARACTERS_PER_MILLION = Decimal(10**6)
"""A `$/M chars` price is per million characters (a count, not the micro-dollar factor)."""

MAX_SECONDS = 24 * 3600.0
MAX_COUNT = 10_000
DURATION_FIELDS = ("duration",)
COUNT_FIELDS = ("n", "num_images", "image_num", "count")
TEXT_FIELDS = ("text", "input")
CHARACTERS_PER_MILLION = Decimal(10**6)
"""Text is priced per million characters (a count, not the money module's micro-dollars)."""


@dataclass(frozen=True, slots=True)
class Measured:
    """Units a job will be billed on: exactly ``low == high``, or a range when bounded."""

    low: Decimal
    high: Decimal
    bounded: bool = False


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _field(name: str, payload: Mapping[str, Any], defaults: Mapping[str, Any]) -> Any:
    value = payload.get(name)
    return defaults.get(name) if value is None else value


def seconds(
    spec: ModelSpec | None,
    payload: Mapping[str, Any],
    defaults: Mapping[str, Any],
    bound_seconds: float,
) -> Measured:
    """Seconds billed: the body's (or default) duration; else bounded by ``bound_seconds``."""
    found: float | None = None
    if spec is not None and spec.billing.duration_field is not None:
        found = spec.quantities(payload).seconds
        if found is None and spec.billing.zero_duration_means_input:
            return _bounded(bound_seconds)
    if found is None:
        for name in DURATION_FIELDS:
            found = _number(_field(name, payload, defaults))
            if found is not None:
                break
    if found is None or not 0 < found <= MAX_SECONDS:
        return _bounded(bound_seconds)
    exact = Decimal(str(found))
    return Measured(exact, exact)


def _bounded(bound_seconds: float) -> Measured:
    return Measured(Decimal(0), Decimal(str(bound_seconds)), bounded=True)


def images(spec: ModelSpec | None, payload: Mapping[str, Any], defaults: Mapping[str, Any]) -> int:
    """Images billed: the catalog's count rules, else ``n``/``num_images``/... (1 when absent)."""
    if spec is not None:
        count = spec.quantities(payload).count
    else:
        count = 1
        for name in COUNT_FIELDS:
            raw = _field(name, payload, defaults)
            if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
                count = raw
                break
    return count if 0 < count <= MAX_COUNT else 1


def characters(payload: Mapping[str, Any]) -> int:
    """Characters (code points) of the text to speak."""
    for name in TEXT_FIELDS:
        text = payload.get(name)
        if isinstance(text, str):
            return len(text)
    return 0


def measure(
    unit: ListUnit,
    spec: ModelSpec | None,
    payload: Mapping[str, Any],
    defaults: Mapping[str, Any] | None,
    bound_seconds: float,
) -> Measured:
    """Units of ``unit`` that ``payload`` will be billed on (millions of characters for text)."""
    known = defaults or {}
    if unit == "per_second":
        return seconds(spec, payload, known, bound_seconds)
    if unit == "per_image":
        count = Decimal(images(spec, payload, known))
        return Measured(count, count)
    chars = Decimal(characters(payload)) / CHARACTERS_PER_MILLION
    return Measured(chars, chars)
