"""Price the job before it is submitted: the estimate budgets reserve and clients see."""

from __future__ import annotations

from proxy.catalog.loader import Catalog
from proxy.config import PricingSettings
from proxy.context import RequestContext
from proxy.jobs.pricing import estimate_micros, listed_quantities, lookup


class PriceStage:
    name = "price"

    def __init__(self, catalog: Catalog, pricing: PricingSettings) -> None:
        self._catalog = catalog
        self._pricing = pricing

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.price_table_version = self._pricing.version
        slug = ctx.pinned_slug
        entry = lookup(self._pricing.models, slug)
        if slug is None or entry is None or ctx.payload is None:
            ctx.estimated_cost_micros = None
            return
        spec = self._catalog.get(slug)
        quantities = (
            spec.quantities(ctx.payload)
            if spec is not None
            else listed_quantities(entry, ctx.payload)  # upstream-listed: common fields only
        )
        ctx.estimated_cost_micros = estimate_micros(entry, quantities)
