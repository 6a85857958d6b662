"""Hand translation of the reference's free-text rules into JSON Schema and data.

Each cross-field rule is ``{status, text, fields, category, allowed, schema}``;
``schema`` becomes one ``allOf`` entry tagged with ``$comment: <rule id>`` so a
validation error can be traced back to the sentence it enforces.
"""

from __future__ import annotations

import copy
from typing import Any

HAILUO_RULE_STATUS = {
    "minimax/hailuo-2.3-t2v": "documented",
    "minimax/hailuo-2.3-i2v": "documented",
    "minimax/hailuo-02-fl2v": "documented",
    "minimax/hailuo-2.3-fast-i2v": "inferred",
    "minimax/hailuo-02-t2v": "inferred",
    "minimax/hailuo-02-i2v": "inferred",
}
SEEDANCE_WITH_FRAMES = tuple(
    f"bytedance/seedance-2.0{tier}-{kind}"
    for kind in ("i2v", "v2v")
    for tier in ("", "-fast", "-mini")
)
KLING_OMNI = ("kling/kling-v3-omni-video", "kling/kling-video-o1")
WAN_I2V_COMBOS = [
    "first_frame",
    "first_frame+last_frame",
    "first_frame+driving_audio",
    "first_frame+last_frame+driving_audio",
    "first_clip",
    "first_clip+last_frame",
]

IMAGE_FIELDS = frozenset(
    {"first_frame_image", "last_frame_image", "reference_images", "image", "images"}
    | {"first_frame", "last_frame", "mask"}
)
VIDEO_FIELDS = frozenset({"video_urls", "videos", "reference_videos", "video_url", "first_clip"})
AUDIO_FIELDS = frozenset({"audio_urls", "audio_url", "driving_audio"})


def _forbidden() -> dict[str, Any]:
    """``{"not": {}}`` rather than ``false``: jsonschema keeps the field in the error path."""
    return {"not": {}}


def _present(field: str) -> dict[str, Any]:
    return {"required": [field]}


def _equals(field: str, value: Any) -> dict[str, Any]:
    return {"properties": {field: {"const": value}}, "required": [field]}


def _area(sep: str, lo: int, hi: int, ratio: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"separator": sep, "min": lo, "max": hi}
    if ratio:
        spec.update({"ratio_min": 1 / 16, "ratio_max": 16})
    return spec


def cross_rules(slug: str) -> dict[str, dict[str, Any]]:
    """The cross-field rules of one model, keyed by rule id."""
    rules: dict[str, dict[str, Any]] = {}
    if slug in HAILUO_RULE_STATUS:
        rules["hailuo_duration_resolution"] = {
            "status": HAILUO_RULE_STATUS[slug],
            "text": "duration 10 is only available at resolution 768P (1080P allows 6 s only)",
            "fields": ["duration", "resolution"],
            "schema": {
                "if": _equals("duration", 10),
                "then": {"properties": {"resolution": {"const": "768P"}}},
            },
        }
    if slug in SEEDANCE_WITH_FRAMES:
        rules["seedance_frames_vs_reference"] = {
            "status": "documented",
            "text": "first_frame_image/last_frame_image must not be combined with reference_images",
            "fields": ["first_frame_image", "last_frame_image", "reference_images"],
            "schema": {
                "if": _present("reference_images"),
                "then": {
                    "properties": {
                        "first_frame_image": _forbidden(),
                        "last_frame_image": _forbidden(),
                    }
                },
            },
        }
    if slug in SEEDANCE_WITH_FRAMES and slug.endswith("i2v"):
        fields = ["first_frame_image", "last_frame_image", "reference_images"]
        rules["seedance_i2v_needs_image"] = {
            "status": "inferred",
            "text": "image-to-video needs first_frame_image, last_frame_image or reference_images",
            "fields": fields,
            "category": "Missing required parameter",
            "allowed": fields,
            "schema": {"anyOf": [_present(f) for f in fields]},
        }
    if slug in KLING_OMNI:
        rules.update(_kling_omni(slug))
    rules.update(_alibaba(slug))
    rules.update(_seedream(slug))
    return rules


def _kling_omni(slug: str) -> dict[str, dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {
        "kling_shot_type": {
            "status": "documented",
            "text": "shot_type ('intelligence') is required when multi_shot is true "
            "and must be omitted otherwise",
            "fields": ["multi_shot", "shot_type"],
            "schema": {
                "if": _equals("multi_shot", True),
                "then": {"required": ["shot_type"]},
                "else": {"properties": {"shot_type": _forbidden()}},
            },
        },
        "kling_videos_sound_duration": {
            "status": "documented",
            "text": "with videos, sound must be 'off' and duration omitted",
            "fields": ["videos", "sound", "duration"],
            "schema": {
                "if": _present("videos"),
                "then": {"properties": {"sound": {"const": "off"}, "duration": _forbidden()}},
            },
        },
    }
    if slug == "kling/kling-video-o1":
        rules["kling_o1_duration"] = {
            "status": "documented",
            "text": "without videos only duration 5 or 10 is available",
            "fields": ["duration", "videos"],
            "allowed": [5, 10],
            "schema": {
                "if": {"not": _present("videos")},
                "then": {"properties": {"duration": {"enum": [5, 10]}}},
            },
        }
    return rules


def _alibaba(slug: str) -> dict[str, dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    if slug == "alibaba/wan2.7-i2v":
        rules["wan_i2v_start_media"] = {
            "status": "documented",
            "text": "first_frame (or first_clip for a continuation) is required",
            "fields": ["first_frame", "first_clip"],
            "category": "Missing required parameter",
            "allowed": WAN_I2V_COMBOS,
            "schema": {"anyOf": [_present("first_frame"), _present("first_clip")]},
            "drop_required": ["first_frame"],
        }
        rules["wan_i2v_media_combination"] = {
            "status": "documented",
            "text": "media combination must be one of: " + " | ".join(WAN_I2V_COMBOS),
            "fields": ["first_frame", "first_clip", "driving_audio", "last_frame"],
            "allowed": WAN_I2V_COMBOS,
            "schema": {
                "if": _present("first_clip"),
                "then": {
                    "properties": {"first_frame": _forbidden(), "driving_audio": _forbidden()}
                },
            },
        }
    if slug == "alibaba/wan2.7-r2v":
        fields = ["reference_images", "reference_videos", "first_frame_image"]
        rules["wan_r2v_needs_reference"] = {
            "status": "documented",
            "text": "at least one of reference_images, reference_videos, first_frame_image",
            "fields": fields,
            "category": "Missing required parameter",
            "allowed": fields,
            "schema": {"anyOf": [_present(f) for f in fields]},
        }
        steps = [
            {
                "if": {
                    "properties": {"reference_images": {"minItems": k}},
                    **_present("reference_images"),
                },
                "then": {"properties": {"reference_videos": {"maxItems": 5 - k}}},
            }
            for k in range(1, 6)
        ]
        rules["wan_r2v_media_total"] = {
            "status": "documented",
            "text": "reference_images + reference_videos must total at most 5 items",
            "fields": ["reference_images", "reference_videos"],
            "schema": {
                "properties": {
                    "reference_images": {"maxItems": 5},
                    "reference_videos": {"maxItems": 5},
                },
                "allOf": steps,
            },
        }
    if slug == "alibaba/wan2.7-videoedit":
        rules["wan_videoedit_media_total"] = {
            "status": "documented",
            "text": "video_url + reference_images must total at most 5 media",
            "fields": ["video_url", "reference_images"],
            "schema": {"properties": {"reference_images": {"maxItems": 4}}},
        }
    if slug == "alibaba/wan2.7-image":
        rules["wan_image_count"] = {
            "status": "documented",
            "text": "n must be at most 4 unless enable_sequential is true (then at most 12)",
            "fields": ["n", "enable_sequential"],
            "schema": {
                "if": _equals("enable_sequential", True),
                "else": {"properties": {"n": {"maximum": 4}}},
            },
        }
        rules["wan_image_size"] = {
            "status": "inferred",
            "text": "size is 1K, 2K or 'width*height' between 768*768 and 2048*2048 pixels",
            "fields": ["size"],
            "category": "Invalid format",
            "schema": {
                "properties": {
                    "size": {
                        "pattern": r"^(1K|2K|[0-9]{1,5}\*[0-9]{1,5})$",
                        "x-pixelArea": _area("*", 768 * 768, 2048 * 2048, ratio=False),
                    }
                }
            },
        }
    return rules


def _seedream(slug: str) -> dict[str, dict[str, Any]]:
    low = {"bytedance/seedream-4.5-t2i": 3_686_400, "bytedance/seedream-4.0-t2i": 921_600}
    if slug not in low:
        return {}
    return {
        "seedream_size_format": {
            "status": "inferred",
            "text": "size is 'WIDTHxHEIGHT' (or a 1K-4K preset)",
            "fields": ["size"],
            "category": "Invalid format",
            "schema": {"properties": {"size": {"pattern": r"^([0-9]{1,5}x[0-9]{1,5}|[1-4]K)$"}}},
        },
        "seedream_size_area": {
            "status": "documented",
            "text": f"size total pixels {low[slug]:,}..16,777,216, aspect 1/16..16",
            "fields": ["size"],
            "schema": {
                "properties": {"size": {"x-pixelArea": _area("x", low[slug], 16_777_216, True)}}
            },
        },
    }


def normalise_kind(raw: str) -> tuple[str, str]:
    """A small bounded kind for metrics, plus the reference's own wording."""
    if "omni" in raw:
        return "omni", raw
    if "edit" in raw:
        return "edit", raw
    return raw.split("/")[0].split(" ")[0], raw


def media_for(slug: str, ref: dict[str, Any]) -> list[dict[str, Any]]:
    """The media-carrying fields of one model, with image constraints."""
    image_input = ref.get("image_input") or {}
    documented = bool(image_input.get("formats")) and "max_bytes_exclusive" in image_input
    constraints: dict[str, Any] = {"status": "inferred"}
    if documented:
        formats = sorted({"jpeg" if f in ("jpg", "jpeg") else f for f in image_input["formats"]})
        constraints = {
            "formats": formats,
            "max_bytes_exclusive": image_input["max_bytes_exclusive"],
            "min_short_side_exclusive": image_input["min_short_side_px_exclusive"],
            "aspect_min": 2 / 5,
            "aspect_max": 5 / 2,
            "status": "documented" if image_input.get("status") == "documented" else "inferred",
        }
    media: list[dict[str, Any]] = []
    for param in ref["parameters"]:
        name = param["name"]
        many = param["type"].startswith("array")
        if name in IMAGE_FIELDS:
            kind = "image"
        elif name in VIDEO_FIELDS:
            kind = "video"
        elif name in AUDIO_FIELDS:
            kind = "audio"
        else:
            continue
        entry: dict[str, Any] = {"field": name, "media": kind, "many": many}
        if kind == "image":
            entry["constraints"] = copy.deepcopy(constraints)
        media.append(entry)
    return media


def billing_for(slug: str, kind: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """How pricing reads quantities from a body of this model."""
    if kind in ("t2i", "i2i"):
        billing: dict[str, Any] = {"unit": "per_image", "default_count": 1}
        if "size" in defaults:
            billing.update({"resolution_field": "size", "default_resolution": defaults["size"]})
        if slug == "alibaba/wan2.7-image":
            billing.update({"count_field": "n", "default_count": 4})
            billing["count_rules"] = [
                {"when": {"enable_sequential": True}, "field": "n", "default": 12}
            ]
        if slug.startswith("bytedance/seedream-4"):
            billing["count_rules"] = [
                {
                    "when": {"sequential_image_generation": "auto"},
                    "field": "sequential_image_generation_max_images",
                    "default": defaults.get("sequential_image_generation_max_images", 5),
                }
            ]
        return billing
    res_field = "mode" if slug.startswith("kling/") else "resolution"
    default_res = defaults.get(res_field)
    if default_res is None and slug.startswith("bytedance/seedance"):
        default_res = "720p"  # inferred: ByteDance's own default
    return {
        "unit": "per_second",
        "duration_field": "duration",
        "default_duration": defaults.get("duration", 5),
        "resolution_field": res_field,
        "default_resolution": default_res,
        "zero_duration_means_input": slug == "alibaba/wan2.7-videoedit",
    }
