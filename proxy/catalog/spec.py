"""Typed description of one model: its request schema, media inputs and billing.

A ``ModelSpec`` is plain data loaded from ``data/catalog.json`` (plus operator
overrides). Every rule carries a certainty mark, ``documented`` (stated by a
Modellix page) or ``inferred`` (derived from sibling models), so operators can
see which refusals rest on firm ground.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Certainty = Literal["documented", "inferred"]
BillingUnit = Literal["per_second", "per_image", "per_video"]
MediaKind = Literal["image", "video", "audio"]

# A frame that the upstream (MiniMax) documents; used for undocumented image fields too.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MIN_SHORT_SIDE = 300


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImageConstraints(_Frozen):
    """What an image input must satisfy; bounds are exclusive where the docs say so."""

    formats: tuple[str, ...] = ("jpeg", "png", "webp")
    max_bytes_exclusive: int = DEFAULT_MAX_BYTES
    min_short_side_exclusive: int = DEFAULT_MIN_SHORT_SIDE
    aspect_min: float = 2 / 5  # width / height, inclusive
    aspect_max: float = 5 / 2
    status: Certainty = "inferred"


class MediaField(_Frozen):
    """A body field that carries media (a URL, a data URL or raw base64)."""

    field: str
    media: MediaKind
    many: bool = False  # an array of references rather than one string
    constraints: ImageConstraints | None = None  # images only


class Rule(_Frozen):
    """One validation rule, its certainty and the human sentence it enforces."""

    status: Certainty
    text: str
    fields: tuple[str, ...] = ()
    category: str = "Invalid parameters"
    allowed: Any = None


class CountRule(_Frozen):
    """When ``when`` matches the effective body, the image count comes from here."""

    when: dict[str, Any]
    field: str | None = None
    default: int = 1


class Billing(_Frozen):
    """Where the pricing code finds the quantities it multiplies."""

    unit: BillingUnit
    duration_field: str | None = None
    default_duration: float | None = None
    resolution_field: str | None = None
    default_resolution: str | None = None
    count_field: str | None = None
    default_count: int = 1
    count_rules: tuple[CountRule, ...] = ()
    zero_duration_means_input: bool = False  # e.g. wan videoedit: 0 keeps the input length


@dataclass(frozen=True, slots=True)
class Quantities:
    """What one request would be billed on, read from its effective parameters."""

    unit: BillingUnit
    seconds: float | None
    resolution: str | None
    count: int


class ModelSpec(_Frozen):
    """Everything the proxy knows about one model slug."""

    slug: str
    kind: str  # t2v, i2v, fl2v, v2v, r2v, omni, edit, t2i, i2i
    kind_detail: str = ""
    status: Certainty
    legacy: bool = False
    sources: tuple[str, ...] = ()
    json_schema: dict[str, Any]
    rules: dict[str, Rule] = Field(default_factory=dict)
    media: tuple[MediaField, ...] = ()
    defaults: dict[str, Any] = Field(default_factory=dict)
    billing: Billing
    closed: bool = False  # unknown fields refused whatever the policy says

    @property
    def marks(self) -> dict[str, Certainty]:
        """Certainty of every rule, by rule id (``param:<name>`` for per-field rules)."""
        return {rule_id: rule.status for rule_id, rule in self.rules.items()}

    @property
    def properties(self) -> frozenset[str]:
        props = self.json_schema.get("properties", {})
        return frozenset(props) if isinstance(props, Mapping) else frozenset()

    def effective(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The body with catalog defaults filled in for absent fields (never forwarded)."""
        merged = dict(self.defaults)
        merged.update(payload)
        return merged

    def quantities(self, payload: Mapping[str, Any]) -> Quantities:
        """Billing quantities of a (validated) body, defaults applied."""
        eff = self.effective(payload)
        b = self.billing
        seconds: float | None = None
        if b.duration_field is not None:
            raw = eff.get(b.duration_field, b.default_duration)
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                try:
                    seconds = float(raw)
                except OverflowError:  # an integer too large for a float: not a duration
                    seconds = None
            if seconds == 0 and b.zero_duration_means_input:
                seconds = None
        resolution: str | None = None
        if b.resolution_field is not None:
            res = eff.get(b.resolution_field, b.default_resolution)
            resolution = res if isinstance(res, str) else None
        return Quantities(b.unit, seconds, resolution, _count(b, eff))


def _count(billing: Billing, eff: Mapping[str, Any]) -> int:
    field, default = billing.count_field, billing.default_count
    for rule in billing.count_rules:
        if all(eff.get(k) == v for k, v in rule.when.items()):
            field, default = rule.field, rule.default
            break
    value = eff.get(field) if field is not None else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return default
