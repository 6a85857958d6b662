"""The simulator's model table: every model it lists and serves, with its published schema.

``MODELS`` joins the behaviour table (``model_table``: type, price, billing rule) to
the request schemas in ``data/schemas.json`` (built by
``python -m proxy.simulator.scripts.build_schemas`` from a copy of the reference
catalog). The simulator is the upstream: it never consults the proxy's catalog.

What a running simulator publishes *now* (after a live price or schema change) is
``Simulator.listing`` (``proxy.simulator.listing``); the functions here take the
defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from proxy.simulator import pricing
from proxy.simulator.checks import check_body
from proxy.simulator.model_table import BEYOND_THE_PROXY, SPECS, UNSPECIFIED
from proxy.simulator.spec import ModelSpec

MICROS_PER_USD = pricing.MICROS_PER_USD
BILLED_SECONDS_WHEN_UNKNOWN = pricing.BILLED_SECONDS_WHEN_UNKNOWN

__all__ = [
    "BEYOND_THE_PROXY",
    "BILLED_SECONDS_WHEN_UNKNOWN",
    "MICROS_PER_USD",
    "MODELS",
    "SCHEMAS",
    "UNSPECIFIED",
    "ModelSpec",
    "Published",
    "check_request",
    "find_model",
    "schema_defaults",
    "task_cost_micros",
]


@dataclass(frozen=True, slots=True)
class Published:
    """A model's request schema (a JSON Schema object) and its example bodies."""

    schema: Mapping[str, Any]
    examples: Mapping[str, Any]


def _load_schemas() -> dict[str, Published]:
    text = resources.files("proxy.simulator").joinpath("data/schemas.json").read_text("utf-8")
    document = json.loads(text)
    return {
        slug: Published(entry["schema"], entry["examples"])
        for slug, entry in document["models"].items()
    }


SCHEMAS: Mapping[str, Published] = _load_schemas()
MODELS: Mapping[str, ModelSpec] = {spec.slug.lower(): spec for spec in SPECS}
_missing = {spec.slug for spec in SPECS} ^ set(SCHEMAS)
if _missing:  # pragma: no cover - guarded by tests/simulator/test_schemas.py too
    raise RuntimeError(f"model table and schemas.json disagree on {sorted(_missing)}")


def find_model(provider: str, model: str) -> ModelSpec | None:
    """The model at ``provider/model`` (case-insensitive), or ``None``."""
    return MODELS.get(f"{provider}/{model}".lower())


def schema_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Each property's ``default``, by name."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    return {name: prop["default"] for name, prop in properties.items() if "default" in prop}


def check_request(spec: ModelSpec, body: Mapping[str, Any]) -> str | None:
    """The upstream's 400 message for ``body`` under the model's published schema, or ``None``."""
    return check_body(spec, SCHEMAS[spec.slug].schema, body)


def task_cost_micros(
    spec: ModelSpec, body: Mapping[str, Any], price: Decimal | Mapping[str, Decimal] | None = None
) -> int:
    """What a task costs in micro-dollars (4 decimals of a dollar, half-up) at the table's
    price, or at ``price``, under the published defaults."""
    return pricing.cost_micros(spec, body, schema_defaults(SCHEMAS[spec.slug].schema), price)
