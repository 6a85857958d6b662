"""Body validation: every problem listed, in the upstream's categories, per rule type."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.catalog.loader import Catalog
from proxy.catalog.validation import (
    BodyValidator,
    Problem,
    header_safe,
    parse_body,
    refusal,
)
from proxy.errors import InvalidInput, MalformedJSON
from tests.catalog.imagebytes import GOOD_IMAGE


def check(
    catalog: Catalog, validator: BodyValidator, slug: str, body: dict[str, Any]
) -> list[Problem]:
    spec = catalog.get(slug)
    assert spec is not None
    return validator.check(spec, body)[0]


def fields(problems: list[Problem]) -> list[str]:
    return sorted(p.field for p in problems)


def test_hailuo_1080p_at_10_seconds_is_refused(catalog: Catalog, validator: BodyValidator) -> None:
    """Hailuo 1080P with 10 s is a contradiction, refused with the rule and the allowed value."""
    problems = check(
        catalog,
        validator,
        "minimax/hailuo-02-t2v",
        {"prompt": "x", "duration": 10, "resolution": "1080P"},
    )
    assert len(problems) == 1
    p = problems[0]
    assert (p.field, p.reason, p.allowed, p.status) == (
        "resolution",
        "cross_field",
        ["768P"],
        "inferred",
    )
    assert "768P" in p.problem
    err = refusal(problems)
    assert err.status == 400
    assert err.message.startswith("Invalid parameters: parameter 'resolution'")
    assert err.instance_reason == "cross_field"


@pytest.mark.parametrize(
    ("duration", "resolution"), [(6, "1080P"), (10, "768P"), (10, None), (6, None)]
)
def test_hailuo_valid_combinations_pass(
    catalog: Catalog, validator: BodyValidator, duration: int, resolution: str | None
) -> None:
    """Every combination the rule allows passes, including the defaulted resolution."""
    body: dict[str, Any] = {"prompt": "x", "duration": duration}
    if resolution is not None:
        body["resolution"] = resolution
    assert check(catalog, validator, "minimax/hailuo-2.3-t2v", body) == []


def test_every_problem_is_listed_at_once(catalog: Catalog, validator: BodyValidator) -> None:
    """Missing, wrong type, out of range and enum problems all appear in one refusal."""
    body = {"duration": "6", "resolution": "4K", "prompt_optimizer": "yes", "fast_pretreatment": 1}
    problems = check(catalog, validator, "minimax/hailuo-2.3-t2v", body)
    assert fields(problems) == [
        "duration",
        "fast_pretreatment",
        "prompt",
        "prompt_optimizer",
        "resolution",
    ]
    err = refusal(problems)
    assert err.message.startswith("Missing required parameter: parameter 'prompt' is required")
    assert len(err.details["errors"]) == 5
    assert all({"field", "problem", "allowed"} <= set(e) for e in err.details["errors"])


@pytest.mark.parametrize(
    ("slug", "body", "field", "category"),
    [
        ("minimax/hailuo-2.3-t2v", {"prompt": ""}, "prompt", "Value out of range"),
        ("minimax/hailuo-2.3-t2v", {"prompt": "x" * 2001}, "prompt", "Value out of range"),
        (
            "minimax/hailuo-2.3-t2v",
            {"prompt": "x", "duration": 7},
            "duration",
            "Value out of range",
        ),
        (
            "bytedance/seedance-2.0-t2v",
            {"prompt": "x", "execution_expires_after": 10},
            "execution_expires_after",
            "Value out of range",
        ),
        (
            "kling/kling-v1.6-t2v",
            {"prompt": "x", "cfg_scale": 1.5},
            "cfg_scale",
            "Value out of range",
        ),
        (
            "bytedance/seedance-2.0-v2v",
            {"prompt": "x", "video_urls": []},
            "video_urls",
            "Value out of range",
        ),
        ("alibaba/wan2.7-t2v", {"prompt": "x", "seed": 1.5}, "seed", "Invalid format"),
        ("alibaba/wan2.7-t2v", {"prompt": "x", "duration": 6.0}, "duration", "Invalid format"),
        ("bytedance/seedream-5.0-lite", {"prompt": ""}, "prompt", "Value out of range"),
        (
            "bytedance/seedream-5.0-lite-edit",
            {"prompt": "x", "image": []},
            "image",
            "Value out of range",
        ),
        ("alibaba/wan2.7-i2v", {"first_frame": "ftp://x/y.png"}, "first_frame", "Invalid format"),
        (
            "bytedance/seedream-4.5-t2i",
            {"prompt": "x", "size": "2048*2048"},
            "size",
            "Invalid format",
        ),
        (
            "bytedance/seedream-4.5-t2i",
            {"prompt": "x", "size": "1024x1024"},
            "size",
            "Value out of range",
        ),
        ("alibaba/wan2.7-image", {"prompt": "x", "n": 5}, "n", "Value out of range"),
        ("kling/kling-v3-i2v", {"prompt": "x"}, "image", "Missing required parameter"),
    ],
)
def test_each_rule_type_maps_to_its_category(
    catalog: Catalog,
    validator: BodyValidator,
    slug: str,
    body: dict[str, Any],
    field: str,
    category: str,
) -> None:
    """Each kind of schema failure names the field and the upstream's message category."""
    problems = check(catalog, validator, slug, body)
    assert [p.field for p in problems] == [field]
    assert problems[0].category == category
    assert refusal(problems).message.startswith(category + ":")


def test_wan_image_allows_twelve_when_sequential(
    catalog: Catalog, validator: BodyValidator
) -> None:
    """n up to 12 is fine with enable_sequential, not without it."""
    assert (
        check(
            catalog,
            validator,
            "alibaba/wan2.7-image",
            {"prompt": "x", "n": 12, "enable_sequential": True},
        )
        == []
    )


def test_seedance_frames_conflict_with_reference_images(
    catalog: Catalog, validator: BodyValidator
) -> None:
    """First/last frame plus reference_images is refused, naming both frame fields."""
    body = {
        "prompt": "x",
        "first_frame_image": GOOD_IMAGE,
        "last_frame_image": GOOD_IMAGE,
        "reference_images": [GOOD_IMAGE],
    }
    problems = check(catalog, validator, "bytedance/seedance-2.0-i2v", body)
    assert fields(problems) == ["first_frame_image", "last_frame_image"]
    assert {p.reason for p in problems} == {"cross_field"}
    assert (
        check(
            catalog,
            validator,
            "bytedance/seedance-2.0-i2v",
            {"prompt": "x", "reference_images": [GOOD_IMAGE]},
        )
        == []
    )


def test_seedance_i2v_needs_an_image(catalog: Catalog, validator: BodyValidator) -> None:
    """An image-to-video body without any image is a missing parameter."""
    problems = check(catalog, validator, "bytedance/seedance-2.0-fast-i2v", {"prompt": "x"})
    assert [(p.field, p.category) for p in problems] == [
        ("first_frame_image", "Missing required parameter")
    ]


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        ({"prompt": "x", "shot_type": "intelligence"}, ["shot_type"]),
        ({"prompt": "x", "multi_shot": True}, ["shot_type"]),
        (
            {"prompt": "x", "videos": ["https://v/1.mp4"], "sound": "on", "duration": 5},
            ["duration", "sound"],
        ),
        ({"prompt": "x", "multi_shot": True, "shot_type": "intelligence"}, []),
        ({"prompt": "x", "videos": ["https://v/1.mp4"], "sound": "off"}, []),
        ({"prompt": "x", "duration": 15}, []),
    ],
)
def test_kling_omni_rules(
    catalog: Catalog, validator: BodyValidator, body: dict[str, Any], bad: list[str]
) -> None:
    """Kling omni: shot_type only with multi_shot, videos force sound off and no duration."""
    assert fields(check(catalog, validator, "kling/kling-v3-omni-video", body)) == bad


def test_kling_o1_duration_without_videos(catalog: Catalog, validator: BodyValidator) -> None:
    """Kling O1 without videos only offers 5 or 10 seconds."""
    assert fields(
        check(catalog, validator, "kling/kling-video-o1", {"prompt": "x", "duration": 7})
    ) == ["duration"]
    assert check(catalog, validator, "kling/kling-video-o1", {"prompt": "x", "duration": 10}) == []


@pytest.mark.parametrize(
    ("keys", "ok"),
    [
        (["first_frame"], True),
        (["first_frame", "last_frame"], True),
        (["first_frame", "driving_audio"], True),
        (["first_frame", "last_frame", "driving_audio"], True),
        (["first_clip"], True),
        (["first_clip", "last_frame"], True),
        ([], False),
        (["last_frame"], False),
        (["first_clip", "first_frame"], False),
        (["first_clip", "driving_audio"], False),
    ],
)
def test_wan_i2v_media_combinations(
    catalog: Catalog, validator: BodyValidator, keys: list[str], ok: bool
) -> None:
    """Only the six documented wan2.7-i2v media combinations pass."""
    values = {
        "first_frame": GOOD_IMAGE,
        "last_frame": GOOD_IMAGE,
        "driving_audio": "https://a/x.mp3",
        "first_clip": "https://a/c.mp4",
    }
    problems = check(catalog, validator, "alibaba/wan2.7-i2v", {k: values[k] for k in keys})
    assert (problems == []) is ok, problems


def test_wan_r2v_total_reference_count(catalog: Catalog, validator: BodyValidator) -> None:
    """reference_images plus reference_videos may not exceed five."""
    imgs, vids = [GOOD_IMAGE] * 3, ["https://v/1.mp4"] * 3
    assert fields(
        check(
            catalog,
            validator,
            "alibaba/wan2.7-r2v",
            {"prompt": "x", "reference_images": imgs, "reference_videos": vids},
        )
    ) == ["reference_videos"]
    assert (
        check(
            catalog,
            validator,
            "alibaba/wan2.7-r2v",
            {"prompt": "x", "reference_images": imgs, "reference_videos": vids[:2]},
        )
        == []
    )


def test_unknown_fields_refused_by_default(catalog: Catalog, validator: BodyValidator) -> None:
    """An unknown field is refused under the default policy with the allowed field names."""
    problems = check(catalog, validator, "minimax/hailuo-2.3-t2v", {"prompt": "x", "seed": 1})
    assert [(p.field, p.reason) for p in problems] == [("seed", "unknown_field")]
    assert "prompt" in problems[0].allowed


def test_unknown_fields_warned_under_warn_policy(catalog: Catalog) -> None:
    """Under the warn policy an unknown field is a warning, except for closed models."""
    lenient = BodyValidator(catalog, unknown_fields="warn")
    hailuo, kling = catalog.get("minimax/hailuo-2.3-t2v"), catalog.get("kling/kling-v3-i2v")
    assert hailuo is not None
    assert kling is not None
    problems, warnings = lenient.check(hailuo, {"prompt": "x", "seed": 1})
    assert problems == []
    assert warnings == ["unknown parameter 'seed' forwarded unchecked"]
    problems, _ = lenient.check(kling, {"prompt": "x", "image": GOOD_IMAGE, "seed": 1})
    assert [p.reason for p in problems] == ["unknown_field"]


def test_warnings_about_hostile_names_are_header_safe(catalog: Catalog) -> None:
    """An unknown field named with CR/LF or non-ASCII is escaped to printable ASCII, bounded."""
    lenient = BodyValidator(catalog, unknown_fields="warn")
    hailuo = catalog.get("minimax/hailuo-2.3-t2v")
    assert hailuo is not None
    _, warnings = lenient.check(hailuo, {"prompt": "x", "a\r\nX: 1": 1, "é" * 200: 2})
    assert warnings[0] == "unknown parameter 'a\\x0d\\x0aX: 1' forwarded unchecked"
    assert all(w.isascii() and w.isprintable() and len(w) < 120 for w in warnings)
    assert header_safe("\udc80") == "\\udc80"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "malformed_json"),
        (b"{", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b'{"a": NaN}', "malformed_json"),
        (b"[" * 100000 + b"]" * 100000, "malformed_json"),
        (b"[]", "not_object"),
        (b"null", "not_object"),
        (b'"text"', "not_object"),
    ],
)
def test_malformed_bodies(body: bytes, reason: str) -> None:
    """Non-JSON and non-object bodies raise MalformedJSON with a bounded reason."""
    with pytest.raises(MalformedJSON) as info:
        parse_body(body)
    assert info.value.instance_reason == reason
    assert info.value.message.startswith("Invalid format:")


def test_refusal_is_invalid_input_in_the_upstream_envelope(
    catalog: Catalog, validator: BodyValidator
) -> None:
    """The refusal renders as a 400 envelope with the errors list."""
    err = refusal(check(catalog, validator, "minimax/hailuo-2.3-t2v", {}))
    assert isinstance(err, InvalidInput)
    envelope = err.envelope("req-1")
    assert envelope["code"] == 400
    assert envelope["errors"] == [
        {"field": "prompt", "problem": "is required", "allowed": None, "rule_status": "documented"}
    ]
