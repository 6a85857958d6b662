"""Hash the canonical input, so equal requests are known as equal whatever their layout."""

from __future__ import annotations

import hashlib
import json

from proxy.catalog.validation import parse_body
from proxy.context import RequestContext
from proxy.errors import MalformedJSON


def canonical_hash(ctx: RequestContext) -> str:
    """SHA-256 over the pinned slug and the body with sorted keys and no spaces."""
    if ctx.payload is not None:
        # ASCII escapes keep the form canonical and encodable (lone surrogates included).
        body = json.dumps(ctx.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        data = body.encode()
    else:
        data = ctx.body
    slug = (ctx.pinned_slug or ctx.requested_slug or "").encode()
    return hashlib.sha256(slug + b"\n" + data).hexdigest()


class FingerprintStage:
    """Parse the body once (validation reuses it) and hash its canonical form.

    A body that is not a JSON object is hashed as sent; validation refuses it next.
    """

    name = "fingerprint"

    async def __call__(self, ctx: RequestContext) -> None:
        if ctx.payload is None:
            try:
                ctx.payload = parse_body(ctx.body)
            except MalformedJSON:
                ctx.payload = None
        ctx.input_hash = canonical_hash(ctx)
