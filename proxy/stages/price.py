"""Price the job before it is submitted: the estimate budgets reserve and clients see."""

from __future__ import annotations

from proxy.catalog.loader import Catalog
from proxy.config import PricingSettings
from proxy.context import RequestContext
from proxy.jobs.pricing import estimate_micros, lookup


class PriceStage:
    name = "price"

    def __init__(self, catalog: Catalog, pricing: PricingSettings) -> None:
        self._catalog = catalog
        self._pricing = pricing

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.price_table_version = self._pricing.version
        slug = ctx.pinned_slug
        spec = self._catalog.get(slug) if slug else None
        if spec is None or ctx.payload is None:
            ctx.estimated_cost_micros = None
            return
        entry = lookup(self._pricing.models, slug)
        ctx.estimated_cost_micros = estimate_micros(entry, spec.quantities(ctx.payload))
