"""Validate stage: refuse a submit body the upstream would reject, before any upstream call."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog

from proxy.catalog.listed import RULE_STATUS as LISTED
from proxy.catalog.listed import common_problems
from proxy.catalog.loader import Catalog
from proxy.catalog.media import MediaChecker
from proxy.catalog.schema_doc import RULE_STATUS as PUBLISHED
from proxy.catalog.schema_doc import SchemaInvalid
from proxy.catalog.schema_registry import PinnedSchema, SchemaRegistry
from proxy.catalog.spec import ModelSpec
from proxy.catalog.validation import BodyValidator, Problem, refusal, sort_problems
from proxy.context import RequestContext
from proxy.stages.body import BodyLimits, parse_object
from proxy.telemetry.metrics import Metrics

log = structlog.get_logger("proxy.stages.validate")
CATALOG = "catalog"


class ValidateStage:
    """Parses ``ctx.body`` into ``ctx.payload`` and checks it against the pinned model.

    Raises ``MalformedJSON`` for a body that is not a JSON object and ``InvalidInput``
    listing every problem otherwise. What checks a body:

    - the model's pinned **published schema** (``proxy.catalog.schema_registry``), when one
      is known: it decides which fields exist and their types, enums and ranges; the
      catalog spec, if any, adds only its cross-field rules and the image checks, so it
      never refuses a field the published schema accepts;
    - else the **catalog** spec (schema, cross-field rules, media);
    - else (upstream-listed without a pinned schema, or permissive pinning) the JSON-object
      check and the common-field checks of ``proxy.catalog.listed`` only.

    URL preflight runs only when the body is otherwise valid (a refusal is already certain
    without it). The forwarded body stays ``ctx.body``, unchanged.
    """

    name = "validate"

    def __init__(
        self,
        catalog: Catalog,
        validator: BodyValidator,
        media: MediaChecker | None = None,
        limits: BodyLimits | None = None,
        *,
        schemas: SchemaRegistry | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._catalog = catalog
        self._validator = validator
        self._media = media or MediaChecker()
        self._limits = limits or BodyLimits()
        self._schemas = schemas
        self._metrics = metrics

    async def __call__(self, ctx: RequestContext) -> None:
        slug = ctx.pinned_slug or ctx.requested_slug
        if slug is None:
            return
        payload = ctx.payload
        if payload is None:  # not a JSON object: parse again for the precise refusal
            payload = await parse_object(ctx.body, self._limits)
        ctx.payload = payload
        spec = self._catalog.get(slug)
        pinned = None
        if self._schemas is not None:  # a slug only permissive pinning lets through: no fetch
            known = ctx.pin_policy_outcome != "permissive"
            pinned = await self._schemas.ensure(slug) if known else self._schemas.get(slug)
        if pinned is not None:
            problems, warnings = await self._published(pinned, spec, payload, len(ctx.body))
            source = PUBLISHED if problems is not None else None
        else:
            problems, warnings, source = None, [], None
        if problems is None and spec is None:  # upstream-listed or permissive
            self._count(LISTED)
            if listed := common_problems(payload):
                raise refusal(sort_problems(listed))
            return
        if problems is None:
            assert spec is not None
            problems, warnings = await self._off_loop(
                len(ctx.body), self._validator.check, spec, payload
            )
            source = CATALOG
        self._count(source or CATALOG)
        media_problems: list[Problem] = []
        if spec is not None:
            media_problems, media_warnings = await self._media.check(
                spec, payload, network=not problems
            )
            warnings = [*warnings, *media_warnings]
        ctx.warnings.extend(warnings)
        if problems or media_problems:
            raise refusal(sort_problems(problems + media_problems))

    async def _published(
        self,
        pinned: PinnedSchema,
        spec: ModelSpec | None,
        payload: Mapping[str, Any],
        size: int,
    ) -> tuple[list[Problem] | None, list[str]]:
        """Problems by the published schema plus the catalog's cross-field rules.

        ``None`` when the published schema cannot be applied (validated as without it).
        """
        policy = self._validator.unknown_fields
        try:
            problems, warnings = await self._off_loop(size, pinned.doc.check, payload, policy)
        except SchemaInvalid as exc:
            log.warning("schema.not_applied", model=pinned.slug, error=str(exc)[:200])
            return None, []
        if spec is not None:
            ours, _ = await self._off_loop(size, self._validator.check, spec, payload)
            known = spec.properties
            problems += [
                p for p in ours if p.reason == "cross_field" and p.field.split(".")[0] in known
            ]
        return problems, warnings

    async def _off_loop(self, size: int, check: Any, *args: Any) -> Any:
        if size <= self._limits.off_loop_bytes:
            return check(*args)
        # a large body's long strings make even error messages costly: off the loop
        return await asyncio.to_thread(check, *args)

    def _count(self, source: str) -> None:
        if self._metrics is not None:
            self._metrics.schema_validations.labels(source).inc()
