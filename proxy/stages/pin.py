"""Pin stage: resolve the requested slug to the pinned slug before anything else."""

from __future__ import annotations

from proxy.catalog.pinning import Pinner
from proxy.context import RequestContext


class PinStage:
    """Sets ``alias``, ``pinned_slug`` and ``pin_policy_outcome``; refuses unknown slugs.

    Raises ``ModelNotFound`` (404, reason ``model_not_pinned`` or
    ``model_not_allowed``) naming the slugs the caller may use.
    """

    name = "pin"

    def __init__(self, pinner: Pinner) -> None:
        self._pinner = pinner

    async def __call__(self, ctx: RequestContext) -> None:
        if ctx.requested_slug is None:
            return
        allowed = ctx.caller.allowed_models if ctx.caller is not None else None
        result = self._pinner.resolve(ctx.requested_slug, allowed)
        ctx.alias = result.alias
        ctx.pinned_slug = result.pinned
        ctx.pin_policy_outcome = result.outcome
