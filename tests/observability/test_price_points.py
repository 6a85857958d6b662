"""The cost histogram's bucket edges sit at the price table's real price points."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from proxy.catalog.from_settings import build_catalog
from proxy.config import Settings
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.price_points import MAX_EDGES, cost_buckets, price_points, thin
from tests.support import SIMULATOR_HAILUO_PRICES


def test_operator_prices_give_the_hailuo_points_each_in_its_own_bucket() -> None:
    """$0.324, $0.54, $0.72 and $1.20 are edges, each with an edge a tenth of a cent below."""
    settings = Settings.model_validate({"pricing": SIMULATOR_HAILUO_PRICES})
    catalog, _ = build_catalog(settings.models)
    assert price_points(catalog, settings.pricing.models) == [324_000, 540_000, 720_000, 1_200_000]
    edges = cost_buckets(catalog, settings.pricing.models)
    assert edges == (0.323, 0.324, 0.539, 0.54, 0.719, 0.72, 1.199, 1.2)
    metrics = Metrics(CollectorRegistry(), cost_buckets=edges)
    for cost in (0.54,) * 19 + (0.72,):
        metrics.job_cost.labels("minimax/hailuo-02-t2v").observe(cost)
    below = {"model": "minimax/hailuo-02-t2v", "le": "0.539"}
    at = {**below, "le": "0.54"}
    get = metrics.registry.get_sample_value
    assert (get("modellix_proxy_job_cost_usd_bucket", below), get(
        "modellix_proxy_job_cost_usd_bucket", at)) == (0.0, 19.0)  # fmt: skip


def test_many_price_points_are_thinned_keeping_the_typical_ones() -> None:
    """Beyond the edge budget, every model's default job keeps its edge."""
    points = list(range(1_000, 101_000, 1_000))
    kept = thin(points, MAX_EDGES // 2, keep=[37_000, 41_000])
    assert len(kept) == MAX_EDGES // 2
    assert {37_000, 41_000, 1_000} <= set(kept)
