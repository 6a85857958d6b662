"""What a task costs, and the display price the model list shows.

A task is measured from its body, a field absent taking the model's *published*
default (so a client reading the schema can compute the same figure):

- video: output seconds, ``duration`` (0, or no such field, bills
  ``BILLED_SECONDS_WHEN_UNKNOWN`` seconds: the output follows an input video);
- image: images (``n``; Seedream's ``sequential_image_generation_max_images`` when
  ``sequential_image_generation`` is ``auto``; Wan's ``n`` defaults to 12 with
  ``enable_sequential``); one otherwise;
- text-to-speech and voice cloning: characters (code points) of ``text``;
- speech-to-text: seconds of input audio, see ``audio_seconds``.

The cost is unit price times quantity, rounded half-up to 4 decimals of a dollar
(100 micro-dollars): the amount billed and reported as ``data.billing.amount``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from proxy.simulator.spec import ModelSpec

MICROS_PER_USD = Decimal(1_000_000)
CENT_HUNDREDTHS = Decimal("0.0001")
BILLED_SECONDS_WHEN_UNKNOWN = 5
AUDIO_SECONDS_MIN, AUDIO_SECONDS_MAX = 1, 600
PriceTable = Mapping[str, Decimal]


def _int(value: Any) -> int | None:
    """A JSON integer (``6`` or ``6.0``), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def _field(name: str, body: Mapping[str, Any], defaults: Mapping[str, Any]) -> Any:
    value = body.get(name)
    return defaults.get(name) if value is None else value


def output_count(spec: ModelSpec, body: Mapping[str, Any], defaults: Mapping[str, Any]) -> int:
    """How many resources a successful task yields (images: as asked; else one)."""
    if spec.image_count == "n":
        n = _int(body.get("n"))
        if n is None and body.get("enable_sequential") is True:
            return 12
        return n if n is not None else _int(defaults.get("n")) or 1
    if spec.image_count == "seedream" and body.get("sequential_image_generation") == "auto":
        name = "sequential_image_generation_max_images"
        return _int(_field(name, body, defaults)) or 5
    return 1


def audio_seconds(url: Any) -> int:
    """Seconds of input audio at ``url``, derived deterministically (the simulator fetches nothing).

    A ``duration=<seconds>`` query parameter gives it (rounded up); otherwise a hash of
    the URL picks it. Either way it is kept within 1-600 s.
    """
    text = url if isinstance(url, str) else ""
    given = parse_qs(urlsplit(text).query).get("duration", [])
    try:
        seconds = math.ceil(float(given[0])) if given else None
    except ValueError:
        seconds = None
    if seconds is None or not math.isfinite(seconds):
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
        seconds = AUDIO_SECONDS_MIN + int.from_bytes(digest[:8], "big") % AUDIO_SECONDS_MAX
    return max(AUDIO_SECONDS_MIN, min(AUDIO_SECONDS_MAX, seconds))


def quantity(spec: ModelSpec, body: Mapping[str, Any], defaults: Mapping[str, Any]) -> int:
    """Units billed: output seconds, images, characters of text or seconds of input audio."""
    if spec.basis == "images":
        return output_count(spec, body, defaults)
    if spec.basis == "chars":
        text = body.get("text")
        return len(text) if isinstance(text, str) else 0
    if spec.basis == "audio_seconds":
        return audio_seconds(body.get("audio_url"))
    seconds = _int(_field("duration", body, defaults))
    return seconds if seconds is not None and seconds > 0 else BILLED_SECONDS_WHEN_UNKNOWN


def unit_price(price: Decimal | PriceTable, key: str) -> Decimal:
    """The price for ``key`` (e.g. a resolution) from a flat or keyed price."""
    if isinstance(price, Decimal):
        return price
    table = {k.upper(): value for k, value in price.items()}
    if key.upper() in table:
        return table[key.upper()]
    if "*" in table:
        return table["*"]
    return max(table.values(), default=Decimal(0))


def price_key(spec: ModelSpec, body: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    value = _field(spec.price_field, body, defaults)
    return value if isinstance(value, str) else "*"


def cost_micros(
    spec: ModelSpec,
    body: Mapping[str, Any],
    defaults: Mapping[str, Any],
    price: Decimal | PriceTable | None = None,
) -> int:
    """The task's cost in micro-dollars: a multiple of 100 (4 decimals, half-up)."""
    per_unit = unit_price(spec.price if price is None else price, price_key(spec, body, defaults))
    amount = per_unit * quantity(spec, body, defaults)
    if spec.basis == "chars":
        amount /= MICROS_PER_USD  # priced per million characters
    rounded = amount.quantize(CENT_HUNDREDTHS, rounding=ROUND_HALF_UP)
    return int(rounded * MICROS_PER_USD)


def amount_text(micros: int) -> str:
    """``"0.2400"``: micro-dollars as USD with 4 decimals (the billing amount's form)."""
    return f"{Decimal(micros) / MICROS_PER_USD:.4f}"


def display_price(
    spec: ModelSpec, price: Decimal | PriceTable, allowed: list[Any] | None = None
) -> dict[str, Any]:
    """The model list's ``price``: ``{"fixed", "unit"}`` or ``{"min", "max", "unit"}``.

    ``allowed``: the values the published schema allows for the price field; table
    entries for other values are not offered and do not count.
    """
    if isinstance(price, Decimal):
        figures = [price]
    else:
        keys = {str(v).upper() for v in allowed} if allowed else None
        figures = [v for k, v in price.items() if keys is None or k == "*" or k.upper() in keys]
        figures = figures or list(price.values())
    low, high = min(figures), max(figures)
    if low == high:
        return {"fixed": _number(low), "unit": spec.unit}
    return {"min": _number(low), "max": _number(high), "unit": spec.unit}


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)
