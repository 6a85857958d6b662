"""Validate stage: refuse a submit body the upstream would reject, before any upstream call."""

from __future__ import annotations

import asyncio

from proxy.catalog.listed import common_problems
from proxy.catalog.loader import Catalog
from proxy.catalog.media import MediaChecker
from proxy.catalog.validation import BodyValidator, refusal, sort_problems
from proxy.context import RequestContext
from proxy.stages.body import BodyLimits, parse_object


class ValidateStage:
    """Parses ``ctx.body`` into ``ctx.payload`` and checks it against the pinned model.

    Raises ``MalformedJSON`` for a body that is not a JSON object and
    ``InvalidInput`` listing every problem otherwise. URL preflight runs only
    when the body is otherwise valid (a refusal is already certain without it).
    A model outside the catalog (upstream-listed, or permissive pinning) gets the
    JSON-object check and the common-field checks of ``proxy.catalog.listed`` only.
    The forwarded body stays ``ctx.body``, unchanged.
    """

    name = "validate"

    def __init__(
        self,
        catalog: Catalog,
        validator: BodyValidator,
        media: MediaChecker | None = None,
        limits: BodyLimits | None = None,
    ) -> None:
        self._catalog = catalog
        self._validator = validator
        self._media = media or MediaChecker()
        self._limits = limits or BodyLimits()

    async def __call__(self, ctx: RequestContext) -> None:
        slug = ctx.pinned_slug or ctx.requested_slug
        if slug is None:
            return
        payload = ctx.payload
        if payload is None:  # not a JSON object: parse again for the precise refusal
            payload = await parse_object(ctx.body, self._limits)
        ctx.payload = payload
        spec = self._catalog.get(slug)
        if spec is None:  # upstream-listed or permissive: only what can be known
            if listed := common_problems(payload):
                raise refusal(sort_problems(listed))
            return
        if len(ctx.body) <= self._limits.off_loop_bytes:
            problems, warnings = self._validator.check(spec, payload)
        else:  # a large body's long strings make even error messages costly: off the loop
            problems, warnings = await asyncio.to_thread(self._validator.check, spec, payload)
        media_problems, media_warnings = await self._media.check(
            spec, payload, network=not problems
        )
        ctx.warnings.extend(warnings)
        ctx.warnings.extend(media_warnings)
        if problems or media_problems:
            raise refusal(sort_problems(problems + media_problems))
