"""Hash the canonical input, so equal requests are known as equal whatever their layout."""

from __future__ import annotations

import asyncio
import hashlib
import json

from proxy.catalog.validation import parse_body
from proxy.context import RequestContext
from proxy.errors import MalformedJSON
from proxy.stages.body import BodyLimits, canonical_digest, check_shape


def canonical_hash(ctx: RequestContext) -> str:
    """SHA-256 over the pinned slug and the body with sorted keys and no spaces."""
    slug = (ctx.pinned_slug or ctx.requested_slug or "").encode()
    if ctx.payload is not None:
        # ASCII escapes keep the form canonical and encodable (lone surrogates included).
        body = json.dumps(ctx.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        data = body.encode()
    else:
        data = ctx.body
    return hashlib.sha256(slug + b"\n" + data).hexdigest()


def _digest(ctx: RequestContext, limits: BodyLimits) -> None:
    """Parse (within ``limits``) and hash; a body that is not a JSON object is hashed as sent."""
    if ctx.payload is None:
        try:
            ctx.payload = parse_body(ctx.body)
        except MalformedJSON:
            ctx.payload = None
    if ctx.payload is not None:
        check_shape(ctx.payload, limits)
    if len(ctx.body) <= limits.off_loop_bytes:
        ctx.input_hash = canonical_hash(ctx)
        return
    slug = (ctx.pinned_slug or ctx.requested_slug or "").encode()
    if ctx.payload is None:
        ctx.input_hash = hashlib.sha256(slug + b"\n" + ctx.body).hexdigest()
    else:  # the same bytes as canonical_hash, escaped and hashed in slices
        ctx.input_hash = canonical_digest(slug + b"\n", ctx.payload)


class FingerprintStage:
    """Parse the body once (validation reuses it) and hash its canonical form.

    A body that is not a JSON object is hashed as sent; validation refuses it next. A body
    beyond the shape limits (depth, members and items, key length) is refused here (400).
    A body over ``limits.off_loop_bytes`` is parsed and hashed in a worker thread.
    """

    name = "fingerprint"

    def __init__(self, limits: BodyLimits | None = None) -> None:
        self._limits = limits or BodyLimits()

    async def __call__(self, ctx: RequestContext) -> None:
        if len(ctx.body) <= self._limits.off_loop_bytes:
            _digest(ctx, self._limits)
        else:
            await asyncio.to_thread(_digest, ctx, self._limits)
