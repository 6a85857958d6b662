"""The simulator's model table: coverage of the reference catalog and price math."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from proxy.simulator import SimulatorConfig
from proxy.simulator.models import MODELS, check_request, find_model, task_cost_micros
from proxy.simulator.scripts.build_schemas import REFERENCE as CATALOG


def test_table_covers_the_reference_catalog() -> None:
    """Every slug of the (copied) reference catalog is in the table with its kind and a price."""
    catalog = json.loads(CATALOG.read_text())
    slugs = {slug for slug in catalog if slug != "_meta"}
    assert slugs, "the reference catalog lists no model"
    assert slugs <= {spec.slug for spec in MODELS.values()}
    for slug in slugs:
        spec = MODELS[slug.lower()]
        assert spec.price, slug
        image = catalog[slug]["kind"] in ("t2i", "i2i")
        assert (spec.kind == "image") == image, slug


def test_lookup_is_case_insensitive() -> None:
    """Model lookup ignores case, like the upstream's slug matching."""
    spec = find_model("MiniMax", "Hailuo-2.3-T2V")
    assert spec is not None
    assert spec.model_id == "minimax-hailuo-2.3-t2v"


@pytest.mark.parametrize(
    ("slug", "body", "micros"),
    [
        ("minimax/hailuo-2.3-t2v", {}, 324_000),
        ("minimax/hailuo-02-i2v", {"duration": 10}, 540_000),
        ("minimax/hailuo-2.3-fast-i2v", {}, 240_000),  # Modellix's published $0.24 (768P, 6 s)
        ("minimax/hailuo-2.3-fast-i2v", {"resolution": "1080P"}, 480_000),
        ("minimax/hailuo-02-i2v", {"resolution": "512P", "duration": 10}, 200_000),
        ("bytedance/seedance-2.0-mini-t2v", {}, 200_000),  # published defaults: 720p, 5 s
        ("kling/kling-v3-omni-video", {}, 600_000),
        ("alibaba/qwen-image-plus", {"n": 3}, 90_000),
        ("bytedance/seedance-2.0-t2v", {"resolution": "480p", "duration": 4}, 200_000),
        ("alibaba/wan2.7-image", {}, 120_000),
        ("alibaba/wan2.7-image", {"n": 2}, 60_000),
        ("bytedance/seedream-4.5-t2i", {"sequential_image_generation": "auto"}, 200_000),
        ("alibaba/wan2.7-videoedit", {}, 750_000),
    ],
)
def test_task_cost(slug: str, body: dict[str, object], micros: int) -> None:
    """Costs are unit price times seconds or images, in integer micro-dollars."""
    assert task_cost_micros(MODELS[slug], body) == micros


def test_price_overrides_apply() -> None:
    """A configured flat or per-resolution price replaces the table's."""
    spec = MODELS["minimax/hailuo-2.3-t2v"]
    assert task_cost_micros(spec, {}, Decimal("0.1")) == 600_000
    assert task_cost_micros(spec, {}, {"768p": Decimal("0.01")}) == 60_000


def test_check_request_accepts_a_valid_body() -> None:
    """A body with its required fields and allowed values passes the upstream check."""
    spec = MODELS["minimax/hailuo-2.3-i2v"]
    assert check_request(spec, {"first_frame_image": "https://x/y.png", "duration": 10}) is None
    assert check_request(MODELS["alibaba/wan2.7-image"], {"prompt": "x", "n": 13}) == (
        "Value out of range: parameter 'n' must be between 1 and 12, got 13"
    )


def test_wan_i2v_starts_from_a_frame_or_a_clip() -> None:
    """Wan 2.7 i2v accepts a first clip instead of a first frame, but needs one of them."""
    spec = MODELS["alibaba/wan2.7-i2v"]
    assert check_request(spec, {"first_clip": "https://x/clip.mp4"}) is None
    assert check_request(spec, {"first_frame": "https://x/y.png"}) is None
    assert check_request(spec, {"prompt": "x", "first_clip": ""}) == (
        "Invalid parameters: parameter 'first_frame' is required"
    )


def test_config_validates_rates() -> None:
    """Fault rates above 1 in total, or a reversed processing range, are refused."""
    with pytest.raises(ValidationError):
        SimulatorConfig(rate_500=0.6, rate_503=0.6)
    with pytest.raises(ValidationError):
        SimulatorConfig(processing_seconds=(3.0, 1.0))
    assert SimulatorConfig.fast().pending_seconds < 1
