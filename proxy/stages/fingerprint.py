"""Hash the canonical input, so equal requests are known as equal whatever their layout."""

from __future__ import annotations

import hashlib
import json

from proxy.context import RequestContext


def canonical_hash(ctx: RequestContext) -> str:
    """SHA-256 over the pinned slug and the body with sorted keys and no spaces."""
    if ctx.payload is not None:
        body = json.dumps(ctx.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        data = body.encode()
    else:
        data = ctx.body
    slug = (ctx.pinned_slug or ctx.requested_slug or "").encode()
    return hashlib.sha256(slug + b"\n" + data).hexdigest()


class FingerprintStage:
    name = "fingerprint"

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.input_hash = canonical_hash(ctx)
