"""The packaged catalog: coverage of the reference, valid examples, overrides, billing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy.catalog.loader import Catalog, CatalogError, load_catalog, packaged_catalog_data
from proxy.catalog.media import MediaChecker
from proxy.catalog.scripts.build_catalog import REFERENCE, build
from proxy.catalog.scripts.extra_models import EXTRA_MODELS
from proxy.catalog.validation import BodyValidator
from tests.catalog.imagebytes import example_body

SLUGS = sorted(packaged_catalog_data()["models"])


def test_catalog_covers_every_reference_model() -> None:
    """Every model of the reference and of the extra list has an entry, nothing else."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    assert set(SLUGS) == (set(reference) - {"_meta"}) | set(EXTRA_MODELS)


def test_checked_in_catalog_matches_the_generator() -> None:
    """The checked-in JSON is exactly what the build script produces from the reference."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    assert build(reference) == packaged_catalog_data()


@pytest.mark.parametrize("slug", SLUGS)
async def test_example_body_is_valid(slug: str, catalog: Catalog, validator: BodyValidator) -> None:
    """A minimal body and a body with every default both pass schema and media checks."""
    spec = catalog.get(slug)
    assert spec is not None
    for body in (example_body(spec), example_body(spec, with_defaults=True)):
        problems, warnings = validator.check(spec, body)
        assert problems == [], (slug, body, problems)
        media_problems, _ = await MediaChecker().check(spec, body)
        assert media_problems == []
        assert warnings == []


@pytest.mark.parametrize("slug", SLUGS)
def test_every_rule_has_a_certainty_mark(slug: str, catalog: Catalog) -> None:
    """Each model exposes documented/inferred marks for its parameters and cross-field rules."""
    spec = catalog.get(slug)
    assert spec is not None
    assert set(spec.marks.values()) <= {"documented", "inferred"}
    assert {f"param:{p}" for p in spec.properties} <= set(spec.marks)


def test_cross_field_rules_are_marked(catalog: Catalog) -> None:
    """The Hailuo duration rule is documented on 2.3 and inferred on 02."""
    t23, t02 = catalog.get("minimax/hailuo-2.3-t2v"), catalog.get("minimax/hailuo-02-t2v")
    assert t23 is not None
    assert t02 is not None
    assert t23.marks["hailuo_duration_resolution"] == "documented"
    assert t02.marks["hailuo_duration_resolution"] == "inferred"


def test_override_adds_a_model(catalog: Catalog) -> None:
    """An operator can add a model from config without editing code."""
    extra: dict[str, Any] = {
        "kind": "t2v",
        "status": "inferred",
        "json_schema": {
            "type": "object",
            "properties": {"prompt": {"type": "string"}},
            "required": ["prompt"],
        },
        "billing": {"unit": "per_second", "duration_field": "duration", "default_duration": 4},
    }
    loaded = load_catalog({"models": {"acme/new-model": extra}})
    spec = loaded.get("acme/new-model")
    assert spec is not None
    assert len(loaded) == len(catalog) + 1
    assert BodyValidator(loaded).check(spec, {"prompt": "x"}) == ([], [])
    assert spec.quantities({"prompt": "x"}).seconds == 4


def test_override_replaces_a_schema() -> None:
    """Replacing a schema changes what is accepted for that slug only."""
    schema = {"type": "object", "properties": {"prompt": {"type": "string", "maxLength": 5}}}
    loaded = load_catalog({"models": {"minimax/hailuo-02-t2v": {"json_schema": schema}}})
    spec = loaded.get("minimax/hailuo-02-t2v")
    assert spec is not None
    problems, _ = BodyValidator(loaded).check(spec, {"prompt": "far too long"})
    assert [p.field for p in problems] == ["prompt"]


def test_override_disables_models() -> None:
    """Disabled models disappear, through either override form."""
    loaded = load_catalog(
        {
            "models": {"kling/kling-v1.6-t2v": {"disabled": True}},
            "disable": ["minimax/minimax-t2v-01"],
        }
    )
    assert "kling/kling-v1.6-t2v" not in loaded
    assert "minimax/minimax-t2v-01" not in loaded


@pytest.mark.parametrize(
    "overrides",
    [
        {"models": {"acme/x": {"kind": "t2v"}}},
        {
            "models": {
                "minimax/hailuo-02-t2v": {"json_schema": {"type": "object", "minProperties": -1}}
            }
        },
        {"disable": ["nothing"]},  # not a provider/model slug
        {"modles": {}},
    ],
)
def test_bad_overrides_fail_at_load(overrides: dict[str, Any]) -> None:
    """A broken override is a start-up error, not a request-time surprise."""
    with pytest.raises(CatalogError):
        load_catalog(overrides)


def test_effective_fills_defaults_without_touching_the_payload(catalog: Catalog) -> None:
    """``effective`` adds defaults for pricing and leaves the client's values alone."""
    spec = catalog.get("minimax/hailuo-2.3-t2v")
    assert spec is not None
    payload = {"prompt": "x", "duration": 10}
    assert spec.effective(payload) == {**spec.defaults, "prompt": "x", "duration": 10}
    assert payload == {"prompt": "x", "duration": 10}
    q = spec.quantities(payload)
    assert (q.unit, q.seconds, q.resolution, q.count) == ("per_second", 10.0, "768P", 1)


def test_image_counts_follow_sequential_modes(catalog: Catalog) -> None:
    """Image models count outputs from n or the sequential settings."""
    wan, seedream = catalog.get("alibaba/wan2.7-image"), catalog.get("bytedance/seedream-4.5-t2i")
    assert wan is not None
    assert seedream is not None
    assert wan.quantities({"prompt": "x"}).count == 4
    assert wan.quantities({"prompt": "x", "enable_sequential": True}).count == 12
    assert wan.quantities({"prompt": "x", "n": 2}).count == 2
    assert seedream.quantities({"prompt": "x"}).count == 1
    auto = {"prompt": "x", "sequential_image_generation": "auto"}
    assert seedream.quantities(auto).count == 5
    assert seedream.quantities({**auto, "sequential_image_generation_max_images": 9}).count == 9


def test_videoedit_zero_duration_is_unknown(catalog: Catalog) -> None:
    """Wan video edit duration 0 keeps the input length, so seconds are unknown up front."""
    spec = catalog.get("alibaba/wan2.7-videoedit")
    assert spec is not None
    assert spec.quantities({"video_url": "https://x/y.mp4"}).seconds is None
    assert spec.quantities({"video_url": "https://x/y.mp4", "duration": 4}).seconds == 4
