"""The simulator's own model table: what each slug is, what it needs, what it costs.

This is the upstream's check, deliberately coarser than the proxy's catalog: it
refuses a missing required field (or a missing alternative: Wan i2v needs a
``first_frame`` or a ``first_clip``), a non-integer or out-of-set ``duration``, a
Hailuo resolution outside its enum, Hailuo 1080P with 10 s and an out-of-range
image count, each with the upstream's own ``"<Category>: <detail>"`` message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

Kind = Literal["video", "image"]
MICROS_PER_USD = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model as the simulated upstream knows it."""

    slug: str
    type: str
    description: str
    required: tuple[str, ...] = ("prompt",)
    durations: frozenset[int] | None = None
    default_duration: int = 5
    resolutions: tuple[str, ...] | None = None
    """When set, ``resolution`` must be one of these (checked case-sensitively)."""
    default_resolution: str = "*"
    price: Mapping[str, Decimal] = field(default_factory=dict)
    hailuo: bool = False
    image_count: Literal["one", "n", "seedream"] = "one"
    required_one_of: tuple[str, ...] = ()
    """When set, at least one of these must be present (e.g. Wan i2v: a first frame or clip)."""

    @property
    def provider(self) -> str:
        return self.slug.split("/", 1)[0]

    @property
    def kind(self) -> Kind:
        return "image" if self.type.endswith("-to-image") else "video"

    @property
    def model_id(self) -> str:
        return self.slug.replace("/", "-", 1)

    @property
    def docs_url(self) -> str:
        return f"https://docs.modellix.ai/{self.slug.replace('.', '-')}.md"


def _prices(spec: str) -> dict[str, Decimal]:
    """``"768P=0.054 1080P=0.12"`` or ``"*=0.10"`` as a price table."""
    pairs = (item.split("=") for item in spec.split())
    return {key.upper(): Decimal(value) for key, value in pairs}


_PROMPT = ("prompt",)
_I2V = ("first_frame_image",)
_V2V = ("prompt", "video_urls")
_HAILUO_PRICE = "768P=0.054 1080P=0.12"


def _hailuo(slug: str, type_: str, text: str, required: tuple[str, ...] = _PROMPT) -> ModelSpec:
    return ModelSpec(
        slug,
        type_,
        text,
        required,
        frozenset({6, 10}),
        6,
        ("768P", "1080P"),
        "768P",
        _prices(_HAILUO_PRICE),
        hailuo=True,
    )


def _video_01(slug: str, type_: str, text: str, required: tuple[str, ...] = _PROMPT) -> ModelSpec:
    return ModelSpec(
        slug, type_, text, required, frozenset({6}), 6, None, "720P", _prices("720P=0.05")
    )


def _video(
    slug: str,
    type_: str,
    text: str,
    price: str,
    *,
    required: tuple[str, ...] = _PROMPT,
    durations: range | set[int] | None = None,
    default_duration: int = 5,
    resolution: str = "*",
    one_of: tuple[str, ...] = (),
) -> ModelSpec:
    allowed = frozenset(durations) if durations is not None else None
    return ModelSpec(
        slug,
        type_,
        text,
        required,
        allowed,
        default_duration,
        None,
        resolution,
        _prices(price),
        required_one_of=one_of,
    )


def _image(
    slug: str,
    type_: str,
    text: str,
    price: str,
    count: Literal["one", "n", "seedream"] = "one",
    required: tuple[str, ...] = _PROMPT,
) -> ModelSpec:
    return ModelSpec(slug, type_, text, required, price=_prices(f"*={price}"), image_count=count)


_T2V, _I2V_T, _V2V_T = "text-to-video", "image-to-video", "video-to-video"
_T2I, _I2I = "text-to-image", "image-to-image"
_SEEDANCE = range(4, 16)
_SD_FULL = "480P=0.05 720P=0.10 1080P=0.20"
_SD_FAST = "480P=0.03 720P=0.06"
_SD_MINI = "480P=0.02 720P=0.04"
_KLING = range(3, 16)
_WAN = range(2, 16)
_WAN_PRICE = "720P=0.08 1080P=0.15"

UNSPECIFIED: tuple[ModelSpec, ...] = (
    _image("google/nano-banana-2", _T2I, "Google Nano Banana 2 text-to-image", "0.039"),
    _image("alibaba/qwen-image-plus", _T2I, "Qwen Image Plus text-to-image", "0.03"),
    _video(
        "bytedance/seedance-1.0-pro-fast-t2v",
        _T2V,
        "Seedance 1.0 Pro Fast text-to-video",
        "480P=0.02 720P=0.04 1080P=0.08",
        durations=range(2, 13),
        resolution="1080p",
    ),
)
"""Models the simulator serves that have no spec in the proxy's catalog."""

_SPECS: tuple[ModelSpec, ...] = (
    _hailuo("minimax/hailuo-2.3-t2v", _T2V, "MiniMax Hailuo 2.3 text-to-video"),
    _hailuo("minimax/hailuo-2.3-i2v", _I2V_T, "MiniMax Hailuo 2.3 image-to-video", _I2V),
    _hailuo("minimax/hailuo-2.3-fast-i2v", _I2V_T, "MiniMax Hailuo 2.3 Fast image-to-video", _I2V),
    _hailuo(
        "minimax/hailuo-02-fl2v",
        _I2V_T,
        "MiniMax Hailuo 02 first+last frame",
        ("last_frame_image",),
    ),
    _hailuo("minimax/hailuo-02-t2v", _T2V, "MiniMax Hailuo 02 text-to-video"),
    _hailuo("minimax/hailuo-02-i2v", _I2V_T, "MiniMax Hailuo 02 image-to-video", _I2V),
    _video_01("minimax/minimax-t2v-01", _T2V, "MiniMax Video-01 text-to-video"),
    _video_01("minimax/minimax-i2v-01", _I2V_T, "MiniMax Video-01 image-to-video", _I2V),
    _video_01("minimax/minimax-i2v-01-live", _I2V_T, "MiniMax Video-01 Live image-to-video", _I2V),
    _video(
        "bytedance/seedance-2.0-t2v",
        _T2V,
        "Seedance 2.0 text-to-video",
        f"{_SD_FULL} 4K=0.40",
        durations=_SEEDANCE,
        resolution="720p",
    ),
    _video(
        "bytedance/seedance-2.0-fast-t2v",
        _T2V,
        "Seedance 2.0 Fast text-to-video",
        _SD_FAST,
        durations=_SEEDANCE,
        resolution="720p",
    ),
    _video(
        "bytedance/seedance-2.0-mini-t2v",
        _T2V,
        "Seedance 2.0 Mini text-to-video",
        _SD_MINI,
        durations=_SEEDANCE,
        resolution="720p",
    ),
    _video(
        "bytedance/seedance-2.0-i2v",
        _I2V_T,
        "Seedance 2.0 image-to-video",
        _SD_FULL,
        durations=_SEEDANCE,
        resolution="720p",
    ),
    _video(
        "bytedance/seedance-2.0-fast-i2v",
        _I2V_T,
        "Seedance 2.0 Fast image-to-video",
        _SD_FAST,
        durations=_SEEDANCE,
        resolution="720p",
    ),
    _video(
        "bytedance/seedance-2.0-mini-i2v",
        _I2V_T,
        "Seedance 2.0 Mini image-to-video",
        _SD_MINI,
        durations=_SEEDANCE,
        resolution="720p",
    ),
    _video(
        "bytedance/seedance-2.0-v2v",
        _V2V_T,
        "Seedance 2.0 video-to-video",
        _SD_FULL,
        required=_V2V,
        durations=_SEEDANCE,
        resolution="720p",
    ),
    _video(
        "bytedance/seedance-2.0-fast-v2v",
        _V2V_T,
        "Seedance 2.0 Fast video-to-video",
        _SD_FAST,
        required=_V2V,
        durations=_SEEDANCE,
        resolution="720p",
    ),
    _video(
        "bytedance/seedance-2.0-mini-v2v",
        _V2V_T,
        "Seedance 2.0 Mini video-to-video",
        _SD_MINI,
        required=_V2V,
        durations=_SEEDANCE,
        resolution="720p",
    ),
    _video(
        "kling/kling-v3-i2v",
        _I2V_T,
        "Kling V3 image-to-video",
        "*=0.10",
        required=("image", "prompt"),
        durations=_KLING,
    ),
    _video("kling/kling-v3-t2v", _T2V, "Kling V3 text-to-video", "*=0.10", durations=_KLING),
    _video("kling/kling-v3-omni-video", _T2V, "Kling V3 Omni video", "*=0.12", durations=_KLING),
    _video("kling/kling-video-o1", _V2V_T, "Kling Video O1", "*=0.12", durations=_KLING),
    _video("kling/kling-v2.6-t2v", _T2V, "Kling V2.6 text-to-video", "*=0.07", durations={5, 10}),
    _video("kling/kling-v1.6-t2v", _T2V, "Kling V1.6 text-to-video", "*=0.05", durations={5, 10}),
    _video(
        "alibaba/wan2.7-t2v",
        _T2V,
        "Wan 2.7 text-to-video",
        _WAN_PRICE,
        durations=_WAN,
        resolution="1080P",
    ),
    _video(
        "alibaba/wan2.7-i2v",
        _I2V_T,
        "Wan 2.7 image-to-video",
        _WAN_PRICE,
        required=(),
        one_of=("first_frame", "first_clip"),  # continuation mode starts from a clip
        durations=_WAN,
        resolution="1080P",
    ),
    _video(
        "alibaba/wan2.7-r2v",
        "reference-to-video",
        "Wan 2.7 reference-to-video",
        _WAN_PRICE,
        resolution="1080P",
    ),
    _video(
        "alibaba/wan2.7-videoedit",
        _V2V_T,
        "Wan 2.7 video edit",
        _WAN_PRICE,
        required=("video_url",),
        durations={0, *range(2, 11)},
        default_duration=0,
        resolution="1080P",
    ),
    _image("alibaba/wan2.7-image", "text-to-image", "Wan 2.7 image generation", "0.03", "n"),
    _image(
        "bytedance/seedream-4.5-t2i",
        "text-to-image",
        "Seedream 4.5 text-to-image",
        "0.04",
        "seedream",
    ),
    _image(
        "bytedance/seedream-4.0-t2i",
        "text-to-image",
        "Seedream 4.0 text-to-image",
        "0.03",
        "seedream",
    ),
    _image(
        "bytedance/seedream-5.0-lite", "text-to-image", "Seedream 5.0 Lite text-to-image", "0.035"
    ),
    _image(
        "bytedance/seedream-5.0-lite-edit",
        "image-to-image",
        "Seedream 5.0 Lite image edit",
        "0.035",
        required=("prompt", "image"),
    ),
    # The image models Modellix's own clients use by default (the agent skill, the Canvas).
    _image("google/nano-banana-2-lite", _T2I, "Google Nano Banana 2 Lite text-to-image", "0.02"),
    _image(
        "google/nano-banana-pro-edit",
        _I2I,
        "Google Nano Banana Pro image edit",
        "0.134",
        required=("prompt", "image"),
    ),
    _image("openai/gpt-image-2", _T2I, "OpenAI GPT Image 2 text-to-image", "0.04"),
    _image(
        "openai/gpt-image-2-edit",
        _I2I,
        "OpenAI GPT Image 2 image edit",
        "0.04",
        required=("prompt", "images"),
    ),
    _image("openai/gpt-image-1.5", _T2I, "OpenAI GPT Image 1.5 text-to-image", "0.034"),
    _image(
        "openai/gpt-image-1.5-edit",
        _I2I,
        "OpenAI GPT Image 1.5 image edit",
        "0.034",
        required=("prompt", "images"),
    ),
    # Listed and served here, but without a spec in the proxy's catalog: they exercise the
    # proxy's "upstream-listed" path (exact slug accepted, common fields checked only).
    *UNSPECIFIED,
)

MODELS: Mapping[str, ModelSpec] = {spec.slug.lower(): spec for spec in _SPECS}
BILLED_SECONDS_WHEN_UNKNOWN = 5
"""Seconds billed when the output length follows an input video (``duration`` 0 or absent)."""


def model_list() -> list[dict[str, str]]:
    """The ``models`` array of ``GET /api/v1/models``: every model served, in table order."""
    return [
        {
            "slug": spec.slug,
            "type": spec.type,
            "description": spec.description,
            "docs_url": spec.docs_url,
            "provider": spec.provider,
        }
        for spec in MODELS.values()
    ]


def find_model(provider: str, model: str) -> ModelSpec | None:
    """The model at ``provider/model`` (case-insensitive), or ``None``."""
    return MODELS.get(f"{provider}/{model}".lower())


def check_request(spec: ModelSpec, body: Mapping[str, Any]) -> str | None:
    """The upstream's 400 message for a body it would refuse, or ``None`` if accepted."""
    for name in spec.required:
        if _missing(body.get(name)):
            return f"Invalid parameters: parameter '{name}' is required"
    if spec.required_one_of and all(_missing(body.get(n)) for n in spec.required_one_of):
        return f"Invalid parameters: parameter '{spec.required_one_of[0]}' is required"
    duration = body.get("duration")
    if duration is not None:
        if not isinstance(duration, int) or isinstance(duration, bool):
            return f"Invalid format: parameter 'duration' must be an integer, got {duration!r}"
        if spec.durations is not None and duration not in spec.durations:
            allowed = sorted(spec.durations)
            return (
                f"Value out of range: parameter 'duration' must be one of {allowed}, got {duration}"
            )
    resolution = body.get("resolution")
    if spec.resolutions is not None and resolution is not None:
        if resolution not in spec.resolutions:
            return (
                f"Value out of range: parameter 'resolution' must be one of "
                f"{list(spec.resolutions)}, got {resolution!r}"
            )
        if spec.hailuo and resolution == "1080P" and _duration(spec, body) == 10:
            return "Invalid parameters: resolution '1080P' only supports duration 6, got 10"
    return _check_count(spec, body)


def _missing(value: Any) -> bool:
    return value is None or value == "" or value == []


def _check_count(spec: ModelSpec, body: Mapping[str, Any]) -> str | None:
    name, low, high = {
        "n": ("n", 1, 12),
        "seedream": ("sequential_image_generation_max_images", 1, 15),
        "one": ("", 0, 0),
    }[spec.image_count]
    value = body.get(name) if name else None
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return f"Invalid format: parameter '{name}' must be an integer, got {value!r}"
    if not low <= value <= high:
        return (
            f"Value out of range: parameter '{name}' must be between {low} and {high}, got {value}"
        )
    return None


def _duration(spec: ModelSpec, body: Mapping[str, Any]) -> int:
    value = body.get("duration")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return spec.default_duration


def output_count(spec: ModelSpec, body: Mapping[str, Any]) -> int:
    """How many resources a successful task yields (images: n; video: 1)."""
    if spec.image_count == "n":
        default = 12 if body.get("enable_sequential") is True else 4
        value = body.get("n", default)
        return value if isinstance(value, int) else default
    if spec.image_count == "seedream" and body.get("sequential_image_generation") == "auto":
        value = body.get("sequential_image_generation_max_images", 5)
        return value if isinstance(value, int) else 5
    return 1


def billed_units(spec: ModelSpec, body: Mapping[str, Any]) -> int:
    """Output seconds (video) or images (image) the task is billed for."""
    if spec.kind == "image":
        return output_count(spec, body)
    seconds = _duration(spec, body)
    return seconds if seconds > 0 else BILLED_SECONDS_WHEN_UNKNOWN


def unit_price(price: Decimal | Mapping[str, Decimal], resolution: str) -> Decimal:
    """The price for ``resolution`` from a flat or per-resolution price."""
    if isinstance(price, Decimal):
        return price
    table = {key.upper(): value for key, value in price.items()}
    if resolution.upper() in table:
        return table[resolution.upper()]
    if "*" in table:
        return table["*"]
    return max(table.values(), default=Decimal(0))


def task_cost_micros(
    spec: ModelSpec,
    body: Mapping[str, Any],
    override: Decimal | Mapping[str, Decimal] | None = None,
) -> int:
    """What the task costs in integer micro-dollars (half-up rounding)."""
    resolution = body.get("resolution")
    if not isinstance(resolution, str):
        resolution = spec.default_resolution
    price = unit_price(override if override is not None else spec.price, resolution)
    usd = price * billed_units(spec, body)
    return int((usd * MICROS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))
