"""Load the packaged catalog and apply operator overrides from config.

Override shape (a plain mapping, e.g. the ``catalog`` section of the config)::

    models:
      acme/new-model:                 # new slug: a full spec (kind, status, json_schema, billing)
        kind: t2v
        status: inferred
        json_schema: {type: object, properties: {prompt: {type: string}}, required: [prompt]}
        billing: {unit: per_second, duration_field: duration, default_duration: 5}
      minimax/hailuo-02-t2v:          # existing slug: the listed top-level keys are replaced
        json_schema: {...}
      kling/kling-v1.6-t2v:
        disabled: true                # removed from the catalog
    disable: [minimax/minimax-t2v-01] # same, as a list; also refuses (and hides) a slug
                                      # the upstream lists that has no local spec

Every schema is checked against the Draft 2020-12 meta-schema at load time, so a
broken override fails start-up rather than a request.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError

from proxy.catalog.spec import ModelSpec


class CatalogError(ValueError):
    """The catalog data or an operator override is invalid."""


class Catalog:
    """The enabled models, by exact slug, and the slugs the operator disabled.

    A disabled slug stays refused even when the upstream lists it.
    """

    def __init__(self, models: Mapping[str, ModelSpec], disabled: Collection[str] = ()) -> None:
        self._models = dict(models)
        self.disabled = frozenset(disabled)

    def get(self, slug: str) -> ModelSpec | None:
        return self._models.get(slug)

    def __contains__(self, slug: object) -> bool:
        return slug in self._models

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def slugs(self) -> list[str]:
        return sorted(self._models)


def packaged_catalog_data() -> dict[str, Any]:
    """The raw checked-in catalog document."""
    text = resources.files("proxy.catalog").joinpath("data/catalog.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _parse(slug: str, raw: Mapping[str, Any]) -> ModelSpec:
    try:
        spec = ModelSpec.model_validate({**raw, "slug": slug})
    except ValidationError as exc:
        raise CatalogError(f"catalog entry {slug!r} is invalid: {exc}") from exc
    try:
        Draft202012Validator.check_schema(spec.json_schema)
    except SchemaError as exc:
        raise CatalogError(f"catalog entry {slug!r} has an invalid schema: {exc.message}") from exc
    if spec.json_schema.get("type") != "object":
        raise CatalogError(f"catalog entry {slug!r}: the schema must describe an object")
    return spec


def load_catalog(
    overrides: Mapping[str, Any] | None = None,
    *,
    data: Mapping[str, Any] | None = None,
) -> Catalog:
    """Build the catalog from the packaged data (or ``data``) plus operator overrides."""
    document = packaged_catalog_data() if data is None else data
    raw_models: dict[str, dict[str, Any]] = {
        slug: dict(entry) for slug, entry in document.get("models", {}).items()
    }
    overrides = overrides or {}
    unknown = set(overrides) - {"models", "disable"}
    if unknown:
        raise CatalogError(f"unknown catalog override keys: {sorted(unknown)}")
    disabled = set(overrides.get("disable") or ())
    for slug, change in (overrides.get("models") or {}).items():
        if not isinstance(change, Mapping):
            raise CatalogError(f"override for {slug!r} must be a mapping")
        change = dict(change)
        if change.pop("disabled", False):
            disabled.add(slug)
            continue
        base = raw_models.get(slug, {})
        raw_models[slug] = {**base, **change}
    for slug in disabled:
        if not isinstance(slug, str) or "/" not in slug:
            raise CatalogError(f"cannot disable {slug!r}: not a provider/model slug")
        raw_models.pop(slug, None)  # an upstream-listed model without a spec can be disabled
    parsed = {slug: _parse(slug, raw) for slug, raw in raw_models.items()}
    return Catalog(parsed, disabled)
