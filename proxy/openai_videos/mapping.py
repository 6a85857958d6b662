"""From OpenAI's terms to one Modellix model's: the slug, and the body the pipeline checks.

**model**: a name the operator mapped (``openai_videos.models``: ``sora-2`` to a text and
an image slug), else a Modellix slug or alias (``minimax/hailuo-2.3-t2v``), else a bare
name that the catalog holds as ``<provider>/<name>-t2v`` (``hailuo-2.3`` is
``minimax/hailuo-2.3-t2v``). With an ``input_reference`` a text-to-video slug becomes its
image-to-video sibling (``...-i2v``). The slug then takes the pipeline's pin stage like any
other (aliases, pins, the key's allowed models).

**seconds** becomes the model's duration field as is: the validate stage refuses a
duration the model does not take, with the model's own reason, before any cost.

**size** (``WxH``) names a resolution class by its short side: 720 (or 768) is the
model's 720p class (``720p``, ``768P``, Kling's ``std``), 1024 or 1080 its 1080p class
(``1080p``, Kling's ``pro``), 480 and 2160 their own. A model with an aspect-ratio field
gets ``16:9``, ``9:16`` or ``1:1`` from the orientation; without one, the orientation is
the model's own (an image-to-video model follows its reference image). A size without a
class the model has is refused here, naming the sizes it takes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.catalog.loader import Catalog
from proxy.catalog.spec import ModelSpec
from proxy.config import OpenAIVideosSettings
from proxy.openai_videos.errors import OpenAIError, invalid
from proxy.openai_videos.request import VideoRequest

_SIZE = re.compile(r"^([1-9][0-9]{1,4})x([1-9][0-9]{1,4})$")
_SECONDS = re.compile(r"^[1-9][0-9]{0,3}$")
# Each short side and the resolution values that stand for it, in order of preference.
CLASSES: dict[int, tuple[str, ...]] = {
    480: ("480p", "480P"),
    720: ("720p", "720P", "768P", "std"),
    768: ("768P", "720p", "720P", "std"),
    1024: ("1080p", "1080P", "pro"),
    1080: ("1080p", "1080P", "pro"),
    2160: ("4k", "2160p", "2160P"),
}
# The size a video shows when the client named none: by the short side of its default.
_SHOWN = {"480p": "854x480", "4k": "3840x2160"}
_HIGH = frozenset({"1080p", "1080P", "pro"})
_RATIO_FIELDS = ("ratio", "aspect_ratio")


@dataclass(frozen=True, slots=True)
class Mapped:
    """One OpenAI request as a Modellix submit, and how its answer names things."""

    slug: str
    body: dict[str, Any]
    seconds: str  # as the video object shows it
    size: str
    params: dict[str, str] = field(default_factory=dict)  # Modellix field -> OpenAI param


class VideoModels:
    """Resolves OpenAI model names and translates requests (one per application)."""

    def __init__(
        self, settings: OpenAIVideosSettings, catalog: Catalog, aliases: Mapping[str, str]
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._aliases = dict(aliases)
        self._by_name: dict[str, str] = {}
        for slug in catalog.slugs():
            self._by_name.setdefault(slug.split("/", 1)[1], slug)

    def slug_for(self, name: str | None, with_reference: bool) -> str:
        """The Modellix slug an OpenAI ``model`` names (before the pin stage)."""
        name = name or self._settings.default_model
        if name is None:
            raise invalid(
                "model is required: this proxy has no default video model (openai_videos."
                "default_model); name a Modellix model such as hailuo-2.3.",
                "model",
                "missing_required_parameter",
            )
        configured = self._settings.models.get(name)
        if configured is not None:
            slug = configured.image if with_reference else configured.text
            if slug is None:
                kind = "an input_reference" if with_reference else "a prompt alone"
                raise invalid(f"model '{name}' is not mapped for {kind} here.", "model")
            return slug
        if "/" in name:
            return self._sibling(self._aliases.get(name, name), with_reference) or name
        suffix = "-i2v" if with_reference else "-t2v"
        slug = self._by_name.get(name + suffix) or self._by_name.get(name)
        if slug is not None:
            return self._sibling(slug, with_reference) or slug
        other = self._by_name.get(name + ("-t2v" if with_reference else "-i2v"))
        if other is not None:
            need = "takes no input_reference" if with_reference else "needs an input_reference"
            raise invalid(f"model '{name}' {need} (it is {other}).", "input_reference")
        raise OpenAIError.of(
            404,
            f"The model '{name[:100]}' does not exist or you do not have access to it. Name a "
            "Modellix video model (hailuo-2.3, kling-v3, seedance-2.0, wan2.7 or a "
            "provider/model slug), or one the operator mapped.",
            param="model",
            code="model_not_found",
            reason="model_not_pinned",
        )

    def _sibling(self, slug: str, with_reference: bool) -> str | None:
        if with_reference and slug.endswith("-t2v"):
            sibling = slug[: -len("-t2v")] + "-i2v"
            if sibling in self._catalog:
                return sibling
        return None

    def translate(self, req: VideoRequest, slug: str) -> Mapped:
        """The Modellix body for ``req`` on ``slug`` (the pinned slug's spec, if known)."""
        spec = self._catalog.get(slug)
        body: dict[str, Any] = {"prompt": req.prompt}
        params: dict[str, str] = {"prompt": "prompt"}
        seconds = self._seconds(req, spec, body, params)
        size = self._size(req, spec, slug, body, params)
        if req.reference is not None:
            image = _image_field(spec)
            if image is None:
                raise invalid(
                    f"input_reference: {slug} takes no image input known to this proxy.",
                    "input_reference",
                )
            body[image] = req.reference
            params[image] = "input_reference"
        return Mapped(slug, body, seconds, size, params)

    def _seconds(
        self,
        req: VideoRequest,
        spec: ModelSpec | None,
        body: dict[str, Any],
        params: dict[str, str],
    ) -> str:
        name = spec.billing.duration_field if spec is not None else "duration"
        if req.seconds is None:
            default = _default(spec, name)
            return str(default) if default is not None else "auto"
        if not _SECONDS.match(req.seconds):
            raise invalid(
                f"seconds must be a whole number of seconds, got '{req.seconds[:20]}'.", "seconds"
            )
        if name is None:
            raise invalid("seconds: this model's duration is fixed; leave seconds out.", "seconds")
        body[name] = int(req.seconds)
        params[name] = "seconds"
        return req.seconds

    def _size(
        self,
        req: VideoRequest,
        spec: ModelSpec | None,
        slug: str,
        body: dict[str, Any],
        params: dict[str, str],
    ) -> str:
        name = spec.billing.resolution_field if spec is not None else "resolution"
        allowed = _enum(spec, name)
        if req.size is None:
            default = _default(spec, name)
            return shown_size(str(default)) if default is not None else "1280x720"
        match = _SIZE.match(req.size)
        if match is None:
            raise invalid(
                f"size must be WIDTHxHEIGHT such as 1280x720, got '{req.size[:30]}'.", "size"
            )
        width, height = int(match[1]), int(match[2])
        candidates = CLASSES.get(min(width, height), ())
        value = next((c for c in candidates if allowed is None or c in allowed), None)
        if name is None or value is None:
            raise invalid(
                f"size {req.size} is not offered by {slug}; it takes {takes(allowed)}.", "size"
            )
        body[name] = value
        params[name] = "size"
        ratio = next((f for f in _RATIO_FIELDS if spec is not None and f in spec.properties), None)
        if ratio is not None:
            body[ratio] = "16:9" if width > height else "9:16" if height > width else "1:1"
            params[ratio] = "size"
        return req.size


def shown_size(resolution: str) -> str:
    """The size a video shows for a resolution the client did not choose (landscape)."""
    if resolution in _SHOWN:
        return _SHOWN[resolution]
    return "1792x1024" if resolution in _HIGH else "1280x720"


def takes(allowed: tuple[str, ...] | None) -> str:
    """The OpenAI sizes that reach ``allowed`` resolution values, in words."""
    if not allowed:
        return "no size choice"
    sizes = []
    for value in allowed:
        sides = [side for side, names in CLASSES.items() if value in names]
        if sides:
            short = sides[0]
            long = {480: 854, 720: 1280, 768: 1366, 1024: 1792, 1080: 1920, 2160: 3840}[short]
            sizes.append(f"{long}x{short} or {short}x{long} ({value})")
    return ", ".join(sizes) or "no size choice"


def _enum(spec: ModelSpec | None, name: str | None) -> tuple[str, ...] | None:
    if spec is None or name is None:
        return None
    prop = spec.json_schema.get("properties", {}).get(name)
    values = prop.get("enum") if isinstance(prop, dict) else None
    return tuple(str(v) for v in values) if isinstance(values, list) else None


def _default(spec: ModelSpec | None, name: str | None) -> Any:
    if spec is None or name is None:
        return None
    if name in spec.defaults:
        return spec.defaults[name]
    billing = spec.billing
    if name == billing.duration_field and billing.default_duration is not None:
        return int(billing.default_duration)
    if name == billing.resolution_field:
        return billing.default_resolution
    return None


def _image_field(spec: ModelSpec | None) -> str | None:
    if spec is None:
        return None
    return next((m.field for m in spec.media if m.media == "image" and not m.many), None)
