"""The shape of a task's output: resource type, file format, width and height.

- video: the short side from the resolution (``480p`` 480, ``768P`` 768, ``4k``
  2160, ...; PixVerse's ``quality`` likewise), the long side from the aspect ratio
  (``ratio`` / ``aspect_ratio``, default 16:9; portrait ratios swap them), rounded to
  an even number: 720p at 16:9 is 1280x720; format ``mp4``;
- image: ``size`` as ``WxH`` or ``W*H``, or a size tier (``1K`` 1024, ``2K`` 2048,
  ``4K`` 4096) with ``aspectRatio`` / ``aspect_ratio`` / ``ratio`` (square by default);
  1024x1024 otherwise; format ``png`` (``jpeg`` for Seedream);
- audio (text-to-speech, voice cloning): no dimensions, ``wav`` or ``mp3`` (a
  ``format`` field in the body wins); speech-to-text: a ``json`` transcript.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.simulator.spec import ModelSpec

_RESOLUTION = re.compile(r"^(\d{3,4})[pP]$")
_SIZE = re.compile(r"^(\d{2,5})\s*[x*]\s*(\d{2,5})$")
_RATIO = re.compile(r"^(\d{1,2}):(\d{1,2})$")
_TIERS = {"1K": 1024, "2K": 2048, "4K": 4096}
_TRANSCRIPT_FORMATS = {"text": "txt", "srt": "srt", "vtt": "vtt"}
DEFAULT_SHORT_SIDE = 720
DEFAULT_IMAGE_SIDE = 1024


@dataclass(frozen=True, slots=True)
class OutputShape:
    """What each resource of a successful task looks like."""

    type: str
    format: str
    width: int | None = None
    height: int | None = None


def _first(body: Mapping[str, Any], defaults: Mapping[str, Any], *names: str) -> Any:
    for source in (body, defaults):
        for name in names:
            value = source.get(name)
            if isinstance(value, str) and value:
                return value
    return None


def _ratio(text: Any) -> tuple[int, int]:
    match = _RATIO.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0 or int(match.group(2)) == 0:
        return 16, 9
    return int(match.group(1)), int(match.group(2))


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _by_ratio(short: int, ratio: tuple[int, int]) -> tuple[int, int]:
    w, h = ratio
    if w >= h:
        return _even(short * w / h), short
    return short, _even(short * h / w)


def video_short_side(resolution: Any) -> int:
    if isinstance(resolution, str):
        if resolution.upper() == "4K":
            return 2160
        match = _RESOLUTION.match(resolution)
        if match:
            return int(match.group(1))
    return DEFAULT_SHORT_SIDE


def _image_size(body: Mapping[str, Any], defaults: Mapping[str, Any]) -> tuple[int, int]:
    size = _first(body, defaults, "size", "imageSize")
    ratio_text = _first(body, defaults, "aspectRatio", "aspect_ratio", "ratio")
    if isinstance(size, str):
        match = _SIZE.match(size)
        if match:
            return int(match.group(1)), int(match.group(2))
        side = _TIERS.get(size.upper())
        if side is not None:
            w, h = _ratio(ratio_text) if ratio_text else (1, 1)
            return (side, _even(side * h / w)) if w >= h else (_even(side * w / h), side)
    if ratio_text:
        return _by_ratio(DEFAULT_IMAGE_SIDE, _ratio(ratio_text))
    return DEFAULT_IMAGE_SIDE, DEFAULT_IMAGE_SIDE


def output_shape(
    spec: ModelSpec, body: Mapping[str, Any], defaults: Mapping[str, Any]
) -> OutputShape:
    """The type, format and dimensions of the task's resources."""
    if spec.kind == "video":
        short = video_short_side(_first(body, defaults, spec.price_field, "resolution"))
        ratio = _first(body, defaults, "ratio", "aspect_ratio", "aspectRatio")
        width, height = _by_ratio(short, _ratio(ratio))
        return OutputShape("video", "mp4", width, height)
    if spec.kind == "image":
        width, height = _image_size(body, defaults)
        return OutputShape("image", spec.output_format, width, height)
    if spec.kind == "text":
        wanted = _first(body, defaults, "response_format")
        return OutputShape("text", _TRANSCRIPT_FORMATS.get(str(wanted), "json"))
    fmt = _first(body, defaults, "format")
    return OutputShape("audio", fmt if fmt in ("mp3", "wav") else spec.output_format)
