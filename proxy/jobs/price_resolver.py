"""One price per pinned slug, and where it came from.

In order:

1. ``operator``: the operator's ``pricing.models`` entry (``proxy.jobs.pricing``), when it
   can price the body;
2. ``upstream_list``: the display price the model list of the caller's account gives the
   slug (``proxy.catalog.list_prices``, ``proxy.catalog.model_lists``) times the units the
   body will be billed on (``proxy.jobs.quantities``);
3. ``unpriced``: neither. Served and counted; refused where a hard budget applies.

A list price is a range when the list shows ``min``/``max`` (it does not say which
parameters cost what), or when a duration cannot be known (bounded by
``pricing.input_bound_seconds``). The estimate a job reserves and is shown is the top of
its range: a reservation never falls short of what the upstream will charge. List
estimates are widened outward to the upstream's billing precision ($0.0001), since the
charge is rounded to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Literal

from proxy.catalog.list_prices import ListPrice
from proxy.catalog.loader import Catalog
from proxy.catalog.model_lists import ModelLists
from proxy.catalog.upstream_models import UpstreamModels
from proxy.config import PricingSettings
from proxy.jobs.pricing import estimate_micros, listed_quantities
from proxy.jobs.quantities import measure
from proxy.money import from_decimal

PriceSource = Literal["operator", "upstream_list", "unpriced"]
PRICE_SOURCES: tuple[PriceSource, ...] = ("operator", "upstream_list", "unpriced")
BILLING_STEP = Decimal("0.0001")  # the upstream bills in 4 decimals of a dollar
Defaults = Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """What a job is expected to cost: ``estimate`` (reserved, shown) within ``low..high``."""

    source: PriceSource
    version: str | None
    estimate_micros: int | None = None
    low_micros: int | None = None
    high_micros: int | None = None
    bounded: bool = False

    @property
    def priced(self) -> bool:
        return self.estimate_micros is not None


def _no_defaults(slug: str) -> Mapping[str, Any] | None:
    return None


class PriceResolver:
    """Prices bodies for pinned slugs: operator table, else the upstream's list, else none."""

    def __init__(
        self,
        pricing: PricingSettings,
        catalog: Catalog,
        lists: ModelLists | None,
        *,
        defaults: Defaults = _no_defaults,
    ) -> None:
        self._pricing = pricing
        self._catalog = catalog
        self._lists = lists
        self._defaults = defaults

    def listing(self, account: str | None = None) -> UpstreamModels | None:
        """The model list ``account``'s jobs are priced from (``None``: the shared one)."""
        return self._lists.of(account) if self._lists is not None else None

    def use_defaults(self, defaults: Defaults) -> None:
        """Where published schema defaults come from (e.g. the schema fetcher's cache)."""
        self._defaults = defaults

    def needs_list(self, slug: str | None) -> bool:
        """Whether pricing ``slug`` may read the upstream's list (no operator entry for it)."""
        return slug is not None and slug not in self._pricing.models

    def quote(
        self, slug: str | None, payload: Mapping[str, Any] | None, account: str | None = None
    ) -> PriceQuote:
        """The price of ``payload`` for ``slug`` for a caller of ``account`` and where it
        came from."""
        if slug is None or payload is None:
            return PriceQuote("unpriced", self._pricing.version)
        operator = self._operator(slug, payload)
        if operator is not None:
            return operator
        listing = self.listing(account)
        listed = listing.price(slug) if listing is not None else None
        if listing is not None and listed is not None:
            return self._from_list(slug, listed, payload, listing)
        return PriceQuote("unpriced", self._pricing.version)

    def _operator(self, slug: str, payload: Mapping[str, Any]) -> PriceQuote | None:
        entry = self._pricing.models.get(slug)
        if entry is None:
            return None
        spec = self._catalog.get(slug)
        quantities = (
            spec.quantities(payload) if spec is not None else listed_quantities(entry, payload)
        )
        micros = estimate_micros(entry, quantities)
        if micros is None:
            return None
        return PriceQuote("operator", self._pricing.version, micros, micros, micros)

    def _from_list(
        self, slug: str, price: ListPrice, payload: Mapping[str, Any], listing: UpstreamModels
    ) -> PriceQuote:
        spec = self._catalog.get(slug)
        units = measure(
            price.unit, spec, payload, self._defaults(slug), self._pricing.input_bound_seconds
        )
        low = from_decimal((price.low * units.low).quantize(BILLING_STEP, rounding=ROUND_FLOOR))
        high = from_decimal(
            (price.high * units.high).quantize(BILLING_STEP, rounding=ROUND_CEILING)
        )
        version = f"upstream-list-{listing.prices_version}"
        return PriceQuote("upstream_list", version, high, low, high, units.bounded)
