"""Price the job before it is submitted: the estimate budgets reserve and clients see."""

from __future__ import annotations

from proxy.context import RequestContext
from proxy.jobs.price_resolver import PriceResolver


class PriceStage:
    """Sets the estimate and its source; a list price is the caller's account's list's."""

    name = "price"

    def __init__(self, resolver: PriceResolver) -> None:
        self._resolver = resolver

    async def __call__(self, ctx: RequestContext) -> None:
        account = ctx.caller.account if ctx.caller is not None else None
        listing = self._resolver.listing(account)
        if listing is not None and self._resolver.needs_list(ctx.pinned_slug):
            await listing.ensure(ctx.upstream_authorization)  # no-op while the list is fresh
        quote = self._resolver.quote(ctx.pinned_slug, ctx.payload, account)
        ctx.price_table_version = quote.version
        ctx.price_source = quote.source
        ctx.estimated_cost_micros = quote.estimate_micros
        ctx.estimate_low_micros = quote.low_micros
        ctx.estimate_high_micros = quote.high_micros
        ctx.estimate_bounded = quote.bounded
