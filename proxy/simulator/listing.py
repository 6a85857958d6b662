"""What a running simulator publishes and charges now, per model.

Each model's ``Offer`` starts from the table (``proxy.simulator.models``) and the
configuration (``prices``, ``listed_prices``, ``schema_changes``), and can change
mid-run (``Simulator.listing`` or the ``/_sim`` control API):

- ``set_price(slug, price, list_follows=True)``: what new tasks are charged; the model
  list's display price follows, or (``list_follows=False``) keeps showing the old
  figure, a stale list; ``set_listed_price`` changes only the display;
- ``change_schema(slug, properties=..., remove=..., required=...)``: the published
  request schema changes (a field added, an enum narrowed, ...) and the submit check
  follows it at once; ``restore(slug)`` goes back to the start (table and configuration).

A task's cost is fixed when it is accepted: a later price change does not touch it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from proxy.simulator import pricing
from proxy.simulator.checks import check_body
from proxy.simulator.config import SchemaChange, SimulatorConfig
from proxy.simulator.models import MODELS, SCHEMAS, schema_defaults
from proxy.simulator.spec import ModelSpec

Price = Decimal | dict[str, Decimal]
MAX_PRICE = Decimal(10_000)
"""USD per unit; far above any real price, and small enough for exact cost arithmetic."""


class NotServed(KeyError):
    """The simulator serves no such model."""


def parse_price(value: Any) -> Price:
    """A price from JSON or config: a number, or ``{key: number}``; never negative."""
    if isinstance(value, Mapping):
        if not value:
            raise ValueError("a price table needs at least one entry")
        return {str(key).upper(): _amount(amount) for key, amount in value.items()}
    return _amount(value)


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"a price must be a number, got {value!r}")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"a price must be a number, got {value!r}") from None
    if not price.is_finite() or not 0 <= price <= MAX_PRICE:
        raise ValueError(f"a price must be a number from 0 to {MAX_PRICE}, got {value!r}")
    return price


@dataclass(slots=True)
class Offer:
    """One model as published now: schema, charged price, listed price."""

    spec: ModelSpec
    schema: dict[str, Any]
    examples: Mapping[str, Any]
    price: Price
    listed: Price | None = None
    """The display price when it differs from ``price`` (a stale or early list)."""
    _validator: Draft202012Validator | None = field(default=None, repr=False)
    _start: tuple[dict[str, Any], Price, Price | None] | None = field(default=None, repr=False)
    """Schema, price and listed price at start (table and configuration)."""

    @property
    def defaults(self) -> dict[str, Any]:
        return schema_defaults(self.schema)

    def check(self, body: Mapping[str, Any]) -> str | None:
        """The upstream's 400 message for ``body``, or ``None``."""
        if self._validator is None:
            self._validator = Draft202012Validator(self.schema)
        return check_body(self.spec, self.schema, body, self._validator)

    def cost_micros(self, body: Mapping[str, Any]) -> int:
        return pricing.cost_micros(self.spec, body, self.defaults, self.price)

    def display_price(self, listed: Price | None = None) -> dict[str, Any]:
        """The list's ``price``: ``listed`` (one team's own display price), else the offer's."""
        prop = self.schema.get("properties", {}).get(self.spec.price_field, {})
        allowed = prop.get("enum") if isinstance(prop, Mapping) else None
        shown = listed if listed is not None else self.price if self.listed is None else self.listed
        return pricing.display_price(self.spec, shown, allowed)

    def list_item(self, listed: Price | None = None) -> dict[str, Any]:
        spec = self.spec
        return {
            "slug": spec.slug,
            "type": spec.type,
            "description": spec.description,
            "docs_url": spec.docs_url,
            "provider": spec.provider,
            "price": self.display_price(listed),
        }


class Listing:
    """Every model's current offer, by lower-case slug."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.offers: dict[str, Offer] = {}
        for key, spec in MODELS.items():
            published = SCHEMAS[spec.slug]
            self.offers[key] = Offer(
                spec, copy.deepcopy(dict(published.schema)), published.examples, dict(spec.price)
            )
        for slug, value in config.prices.items():
            self.get(slug).price = parse_price(value)
        for slug, value in config.listed_prices.items():
            self.get(slug).listed = parse_price(value)
        for slug, change in config.schema_changes.items():
            self.apply(slug, change)
        for offer in self.offers.values():
            offer._start = (copy.deepcopy(offer.schema), offer.price, offer.listed)

    def get(self, slug: str) -> Offer:
        """The offer of ``slug`` (case-insensitive); ``KeyError`` for a model not served."""
        offer = self.offers.get(slug.lower())
        if offer is None:
            raise NotServed(f"the simulator serves no model {slug!r}")
        return offer

    def find(self, provider: str, model: str) -> Offer | None:
        return self.offers.get(f"{provider}/{model}".lower())

    def items(
        self,
        featured_only: bool = False,
        served: Callable[[str], bool] = lambda slug: True,
        listed: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The ``models`` array of ``GET /api/v1/models``, in table order: the models
        ``served`` (one team's), ``listed`` display prices (its own, by slug) over the offers'."""
        shown = {slug.lower(): parse_price(price) for slug, price in (listed or {}).items()}
        return [
            o.list_item(shown.get(key))
            for key, o in self.offers.items()
            if (o.spec.featured or not featured_only) and served(o.spec.slug)
        ]

    # -- live changes ------------------------------------------------------------------------

    def set_price(self, slug: str, price: Any, *, list_follows: bool = True) -> Offer:
        """Charge ``price`` for new tasks; the list shows it unless ``list_follows`` is false."""
        offer = self.get(slug)
        new = parse_price(price)
        if list_follows:
            offer.listed = None
        elif offer.listed is None:
            offer.listed = offer.price  # the list keeps showing what it showed
        offer.price = new
        return offer

    def set_listed_price(self, slug: str, price: Any | None) -> Offer:
        """Show ``price`` in the model list without changing the charge (``None``: follow it)."""
        offer = self.get(slug)
        offer.listed = None if price is None else parse_price(price)
        return offer

    def change_schema(
        self,
        slug: str,
        *,
        properties: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        required: Iterable[str] | None = None,
    ) -> Offer:
        """Publish a changed request schema for ``slug``; the submit check follows it."""
        offer = self.get(slug)
        schema = copy.deepcopy(offer.schema)
        props: dict[str, Any] = schema.setdefault("properties", {})
        for name, prop in (properties or {}).items():
            if not isinstance(prop, Mapping):
                raise ValueError(f"property {name!r} must be a JSON Schema object")
            props[name] = dict(prop)
        gone = set(remove)
        for name in gone:
            props.pop(name, None)
        names = list(required) if required is not None else schema.get("required", [])
        names = [n for n in names if n not in gone]
        if names:
            schema["required"] = names
        else:
            schema.pop("required", None)
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"the changed schema is invalid: {exc.message}") from None
        offer.schema = schema
        offer._validator = None
        return offer

    def apply(self, slug: str, change: SchemaChange) -> Offer:
        return self.change_schema(
            slug, properties=change.properties, remove=change.remove, required=change.required
        )

    def restore(self, slug: str) -> Offer:
        """Publish and charge for ``slug`` what was published and charged at start."""
        offer = self.get(slug)
        assert offer._start is not None
        schema, offer.price, offer.listed = offer._start
        offer.schema = copy.deepcopy(schema)
        offer._validator = None
        return offer


def model_list(featured_only: bool = False) -> list[dict[str, Any]]:
    """The ``models`` array of ``GET /api/v1/models`` under the default configuration."""
    return Listing(SimulatorConfig()).items(featured_only)
