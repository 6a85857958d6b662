"""Money: integer micro-dollars, and the only place they turn into text, floats or back.

The ledger, budgets and reports keep amounts as ``int`` micro-dollars (1 USD = 1_000_000);
sums are exact. Dollars appear only at the edges:

- :func:`exact` for reports and APIs that must add up to the micro-dollar (``"0.324000"``);
- :func:`display` for people (``"$1,234.57"``);
- :func:`sample` for a Prometheus sample or a JSON number (a float: never summed by us);
- :func:`parse` for what operators type (``"3"``, ``"2.916"``, ``"$1,000.50"``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MICROS_PER_USD = 1_000_000
_MICROS = Decimal(MICROS_PER_USD)


def exact(micros: int) -> str:
    """Dollars as an exact decimal string with six places (``-0.500000``); never a float."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    return f"{sign}{whole}.{frac:06d}"


def display(micros: int) -> str:
    """Dollars for people: ``$1,234.57`` (rounded half up to the cent)."""
    cents = (Decimal(micros) / _MICROS).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"-${-cents:,.2f}" if cents < 0 else f"${cents:,.2f}"


def sample(micros: int) -> float:
    """Dollars as a float, for a metric sample or a JSON number (never used for sums we keep)."""
    return micros / MICROS_PER_USD


def optional_sample(micros: int | None) -> float | None:
    """:func:`sample`, passing ``None`` (unpriced) through."""
    return None if micros is None else sample(micros)


def from_decimal(usd: Decimal) -> int:
    """Decimal dollars to micro-dollars, rounded half up: the one way dollars become micros."""
    return int((usd * _MICROS).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_decimal(micros: int) -> Decimal:
    """Micro-dollars as exact decimal dollars (for settings that hold dollars)."""
    return Decimal(micros) / _MICROS


def parse(text: str) -> int:
    """Dollars as typed (``3``, ``2.916``, ``$1,000.50``) to micro-dollars; ``ValueError`` if not.

    More than six decimal places, infinities and NaN are refused rather than rounded.
    """
    cleaned = text.strip().replace(",", "").removeprefix("$").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not an amount of dollars: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not an amount of dollars: {text!r}")
    micros = value * _MICROS
    if micros != micros.to_integral_value():
        raise ValueError(f"more precise than a micro-dollar: {text!r}")
    return int(micros)
