"""Prices from the operator table, else the upstream list; charges from the task answer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from proxy.catalog.from_settings import build_catalog
from proxy.catalog.list_prices import parse_list_price
from proxy.catalog.model_lists import ModelLists
from proxy.catalog.upstream_models import UpstreamModels
from proxy.config import PricingSettings, Settings
from proxy.jobs.billing import charge_micros
from proxy.jobs.price_resolver import PriceResolver
from proxy.simulator.listing import model_list
from tests.support import SIMULATOR_HAILUO_PRICES


def resolver(pricing: PricingSettings | None = None) -> PriceResolver:
    settings = Settings()
    catalog, _ = build_catalog(settings.models)
    listing = UpstreamModels()
    listing.update({"models": model_list()})  # the simulator's list, as the upstream sends it
    return PriceResolver(pricing or settings.pricing, catalog, ModelLists(listing))


def test_shipped_defaults_have_no_price_table() -> None:
    assert PricingSettings().models == {}


def test_hailuo_fast_comes_out_at_the_published_list_prices() -> None:
    """$0.04-$0.08/s from the list, 6 s: reserved at the top of the range, shown as a range."""
    quote = resolver().quote("minimax/hailuo-2.3-fast-i2v", {"prompt": "x", "duration": 6})
    assert quote.source == "upstream_list"
    assert (quote.low_micros, quote.high_micros, quote.estimate_micros) == (
        240_000,
        480_000,
        480_000,
    )
    assert not quote.bounded
    assert str(quote.version).startswith("upstream-list-")


@pytest.mark.parametrize(
    ("slug", "body", "expected"),
    [
        ("kling/kling-v3-t2v", {"prompt": "x", "duration": 5}, 500_000),  # $0.10/s fixed
        ("google/nano-banana-2-lite", {"prompt": "x"}, 20_000),  # $0.02/img
        ("alibaba/qwen-image-plus", {"prompt": "x", "n": 3}, 90_000),  # no spec: n images
        ("alibaba/qwen-audio-3.0-tts-flash", {"text": "a" * 1000}, 10_000),  # $10/M chars
    ],
)
def test_fixed_list_prices_times_quantities(
    slug: str, body: dict[str, object], expected: int
) -> None:
    quote = resolver().quote(slug, body)
    assert quote.source == "upstream_list"
    assert quote.estimate_micros == quote.low_micros == quote.high_micros == expected


def test_an_input_length_is_bounded() -> None:
    """Speech-to-text bills input audio the body does not measure: 0 to 600 s at $0.0001/s."""
    quote = resolver().quote("openai/whisper-1", {"audio_url": "https://example.com/a.mp3"})
    assert quote.bounded
    assert (quote.low_micros, quote.high_micros) == (0, 60_000)


def test_the_operator_table_wins_and_unlisted_slugs_are_unpriced() -> None:
    prices = PricingSettings.model_validate(SIMULATOR_HAILUO_PRICES)
    body = {"prompt": "x", "duration": 6, "resolution": "768P"}
    quote = resolver(prices).quote("minimax/hailuo-02-t2v", body)
    assert (quote.source, quote.estimate_micros) == ("operator", 324_000)
    assert resolver().quote("acme/not-listed", {"prompt": "x"}).source == "unpriced"


@pytest.mark.parametrize(
    ("price", "parsed"),
    [
        ({"fixed": 0.1, "unit": "$/sec"}, (Decimal("0.1"), Decimal("0.1"), "per_second")),
        ({"min": 1, "max": 2, "unit": "$/M chars"}, (Decimal(1), Decimal(2), "per_million_chars")),
        ({"fixed": 0.1, "unit": "$/frame"}, None),
        ({"min": 2, "max": 1, "unit": "$/img"}, None),
        ({"fixed": "NaN", "unit": "$/img"}, None),
        ({"fixed": -1, "unit": "$/img"}, None),
        ({"fixed": True, "unit": "$/img"}, None),
        ("free", None),
    ],
)
def test_list_prices_are_read_or_refused(price: object, parsed: object) -> None:
    got = parse_list_price({"slug": "a/b", "price": price})
    assert (None if got is None else (got.low, got.high, got.unit)) == parsed


@pytest.mark.parametrize(
    ("data", "micros"),
    [
        ({"billing": {"status": "succeeded", "amount": "0.2400"}}, 240_000),
        ({"billing": {"amount": "1.5"}}, 1_500_000),
        ({"billing": {"status": "pending", "amount": "0.2400"}}, None),
        ({"billing": {"status": "succeeded", "amount": "-1"}}, None),
        ({"billing": {"status": "succeeded", "amount": "1e3"}}, None),
        ({"billing": {"status": "succeeded", "amount": "0.0000001"}}, None),
        ({"billing": "0.24"}, None),
        ({}, None),
    ],
)
def test_the_charge_is_read_only_when_plainly_one(data: dict[str, object], micros: object) -> None:
    assert charge_micros(data) == micros
