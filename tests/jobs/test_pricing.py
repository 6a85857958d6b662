"""The price table's arithmetic."""

from __future__ import annotations

from decimal import Decimal

from proxy.catalog.spec import Quantities
from proxy.config import PriceEntry, PricingSettings
from proxy.jobs.pricing import estimate_micros
from tests.support import SIMULATOR_HAILUO_PRICES

HAILUO = PricingSettings.model_validate(SIMULATOR_HAILUO_PRICES).models["minimax/hailuo-02-t2v"]


def test_hailuo_list_prices_per_second_by_resolution() -> None:
    """Hailuo bills $0.054/s at 768P and $0.12/s at 1080P."""
    assert estimate_micros(HAILUO, Quantities("per_second", 6.0, "768P", 1)) == 324_000
    assert estimate_micros(HAILUO, Quantities("per_second", 10.0, "768P", 1)) == 540_000
    assert estimate_micros(HAILUO, Quantities("per_second", 6.0, "1080P", 1)) == 720_000


def test_resolution_matches_case_insensitively() -> None:
    """Catalogs spell resolutions both ways (720p, 768P); prices match either."""
    assert estimate_micros(HAILUO, Quantities("per_second", 6.0, "768p", 1)) == 324_000


def test_unknown_resolution_or_missing_duration_is_unpriced() -> None:
    """A resolution without a price, or a duration that is not known, gives no estimate."""
    assert estimate_micros(HAILUO, Quantities("per_second", 6.0, "512P", 1)) is None
    assert estimate_micros(HAILUO, Quantities("per_second", None, "768P", 1)) is None
    assert estimate_micros(None, Quantities("per_second", 6.0, "768P", 1)) is None


def test_flat_per_video_and_per_image() -> None:
    """A flat price per video ignores duration; images multiply by the count."""
    video = PriceEntry(unit="per_video", usd=Decimal("0.35"))
    image = PriceEntry(unit="per_image", usd=Decimal("0.03"))
    assert estimate_micros(video, Quantities("per_second", 10.0, None, 1)) == 350_000
    assert estimate_micros(image, Quantities("per_image", None, None, 4)) == 120_000


def test_rounding_is_half_up_to_the_micro_dollar() -> None:
    """Sub-micro amounts round half up, in Decimal, never through floats."""
    entry = PriceEntry(unit="per_second", usd=Decimal("0.0000015"))
    assert estimate_micros(entry, Quantities("per_second", 1.0, None, 1)) == 2


def test_hostile_quantities_are_unpriced_never_an_error() -> None:
    """Negative, infinite, NaN or absurd durations and counts give None (unknown), not a raise."""
    for seconds in (-6.0, 1e29, float("inf"), float("-inf"), float("nan"), 1e308):
        assert estimate_micros(HAILUO, Quantities("per_second", seconds, "768P", 1)) is None
    image = PriceEntry(unit="per_image", usd=Decimal("0.03"))
    for count in (-1, 10**30):
        assert estimate_micros(image, Quantities("per_image", None, None, count)) is None
