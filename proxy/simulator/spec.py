"""What one model is to the simulated upstream: its type, price and billing rule.

The request schema a model publishes lives in ``data/schemas.json`` (see
``proxy.simulator.models``); this is the rest: what the model outputs, how a task
is measured for billing (output seconds, images, characters of text, seconds of
input audio), and its price per unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Kind = Literal["video", "image", "audio", "text"]
"""What a task of the model outputs (the resources' ``type``)."""
Basis = Literal["seconds", "images", "chars", "audio_seconds"]
"""What the model is billed by: output seconds, images, characters of ``text``, input audio."""
ImageCount = Literal["one", "n", "seedream"]
UNITS: Mapping[Basis, str] = {
    "seconds": "$/sec",
    "images": "$/img",
    "chars": "$/M chars",
    "audio_seconds": "$/sec",
}
_AUDIO_TYPES = {"text-to-speech": "audio", "speech-to-speech": "audio", "speech-to-text": "text"}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model as the simulated upstream knows it."""

    slug: str
    type: str
    description: str
    price: Mapping[str, Decimal] = field(default_factory=dict)
    """USD per unit (see ``unit``): ``{"*": p}`` or by the value of ``price_field``
    (keys upper-case; a ``"*"`` entry covers any other value)."""
    price_field: str = "resolution"
    featured: bool = False
    hailuo: bool = False
    """Hailuo's rule: resolution 1080P only with duration 6."""
    image_count: ImageCount = "one"
    required_one_of: tuple[str, ...] = ()
    """When set, at least one of these must be present (e.g. Wan i2v: a first frame or clip)."""
    output_format: str = "mp4"

    @property
    def provider(self) -> str:
        return self.slug.split("/", 1)[0]

    @property
    def model_id(self) -> str:
        return self.slug.replace("/", "-", 1)

    @property
    def docs_url(self) -> str:
        return f"https://docs.modellix.ai/{self.slug.replace('.', '-')}.md"

    @property
    def kind(self) -> Kind:
        if self.type in _AUDIO_TYPES:
            return "text" if _AUDIO_TYPES[self.type] == "text" else "audio"
        return "image" if self.type.endswith("-to-image") else "video"

    @property
    def basis(self) -> Basis:
        if self.type == "speech-to-text":
            return "audio_seconds"
        if self.kind == "audio":
            return "chars"
        return "images" if self.kind == "image" else "seconds"

    @property
    def unit(self) -> str:
        """The unit of the listed price: ``$/sec``, ``$/img`` or ``$/M chars``."""
        return UNITS[self.basis]


def prices(spec: str) -> dict[str, Decimal]:
    """``"768P=0.054 1080P=0.12"`` or ``"*=0.10"`` as a price table."""
    pairs = (item.split("=") for item in spec.split())
    return {key.upper(): Decimal(value) for key, value in pairs}


def video(
    slug: str,
    type_: str,
    text: str,
    price: str,
    *,
    price_field: str = "resolution",
    featured: bool = False,
    hailuo: bool = False,
    one_of: tuple[str, ...] = (),
) -> ModelSpec:
    return ModelSpec(
        slug,
        type_,
        text,
        prices(price),
        price_field,
        featured,
        hailuo,
        required_one_of=one_of,
    )


def image(
    slug: str,
    type_: str,
    text: str,
    price: str,
    *,
    count: ImageCount = "one",
    featured: bool = False,
    fmt: str = "png",
) -> ModelSpec:
    return ModelSpec(
        slug,
        type_,
        text,
        prices(f"*={price}"),
        featured=featured,
        image_count=count,
        output_format=fmt,
    )


def audio(
    slug: str, type_: str, text: str, price: str, *, fmt: str, featured: bool = False
) -> ModelSpec:
    return ModelSpec(slug, type_, text, prices(f"*={price}"), featured=featured, output_format=fmt)
