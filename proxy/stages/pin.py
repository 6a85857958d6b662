"""Pin stage: resolve the requested slug to the pinned slug before anything else."""

from __future__ import annotations

import structlog

from proxy.catalog.listed import RULE_STATUS
from proxy.catalog.pinning import Pinner
from proxy.context import RequestContext

log = structlog.get_logger("proxy.pin")
LISTED_WARNING = (
    f"no local spec for this model: validated as {RULE_STATUS} only "
    "(JSON object, size limits, common fields)"
)


class PinStage:
    """Sets ``alias``, ``pinned_slug`` and ``pin_policy_outcome``; refuses unknown slugs.

    A slug that is neither an alias nor a catalog slug is looked up in the model list of
    the caller's account (``proxy.catalog.model_lists``; pass-through callers: the shared
    list), fetched first (with that account's key; the shared list with the caller's key
    when no account is configured) when the list is missing or stale. Raises
    ``ModelNotFound`` (404, reason ``model_not_pinned``, ``model_disabled`` or
    ``model_not_allowed``) with a one-line message pointing at ``GET /api/v1/models``.
    """

    name = "pin"

    def __init__(self, pinner: Pinner) -> None:
        self._pinner = pinner

    async def __call__(self, ctx: RequestContext) -> None:
        slug = ctx.requested_slug
        if slug is None:
            return
        caller = ctx.caller
        account = caller.account if caller is not None else None
        if self._pinner.needs_listing(slug, account):
            await self._pinner.lists.of(account).ensure(ctx.upstream_authorization)
        allowed = caller.allowed_models if caller is not None else None
        result = self._pinner.resolve(slug, allowed, account)
        ctx.alias = result.alias
        ctx.pinned_slug = result.pinned
        ctx.pin_policy_outcome = result.outcome
        if result.outcome == RULE_STATUS:
            ctx.warnings.append(LISTED_WARNING)
            log.info("pin.upstream_listed", model=result.pinned, rule_status=RULE_STATUS)
