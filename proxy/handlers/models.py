"""``GET /api/v1/models``: the upstream's list, cut to exactly what this proxy lets a caller submit.

The request goes upstream as a pass-through would (the caller's key, or the upstream key
for a proxy key), so the upstream still decides who may list. A 200 answer in the
documented shape (top-level ``models`` array, ``reference/modellix-api.md`` §2.3) is
filtered; anything else is relayed unchanged. What the caller sees:

- every listed model that is submittable under the current policy, as the upstream
  listed it (disabled slugs and, for a proxy key with an allow-list, models outside it
  removed), plus ``proxy_validation``: ``catalog`` (validated fully) or
  ``upstream-listed`` (checked only for what can be known);
- catalog models the upstream did not list (they are submittable too);
- with ``models.upstream_list.show_aliases``, the aliases, each with ``alias_of``.

So the official CLI's ``model list`` and ``model describe`` (which matches a slug in
this list case-insensitively) tell the truth. A complete answer (no query string)
also refreshes the cached list the pin stage uses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from proxy.catalog.listed import RULE_STATUS
from proxy.catalog.loader import Catalog
from proxy.catalog.pinning import Pinner
from proxy.catalog.spec import ModelSpec
from proxy.catalog.upstream_models import ListUnavailable, parse_models
from proxy.forwarding import upstream_headers
from proxy.governance import access
from proxy.state import CONTEXT, ROUTE, RUNTIME, SETTINGS, UPSTREAM
from proxy.upstream.client import Reply, TransportFailure, end_to_end
from proxy.upstream.failures import transport_error

MODELS_NAME = "/api/v1/models"  # the route name ``proxy.routing`` gives the list
TYPES = {
    "t2v": "text-to-video",
    "i2v": "image-to-video",
    "fl2v": "image-to-video",
    "v2v": "video-to-video",
    "r2v": "reference-to-video",
    "omni": "video-to-video",
    "edit": "video-to-video",
    "t2i": "text-to-image",
    "i2i": "image-to-image",
}
_RELAYED = frozenset({"content-length", "content-encoding", "transfer-encoding"})


def catalog_item(spec: ModelSpec) -> dict[str, Any]:
    """A list entry, in the upstream's shape, for a catalog model the upstream did not list."""
    provider = spec.slug.split("/", 1)[0]
    return {
        "slug": spec.slug,
        "type": TYPES.get(spec.kind, spec.kind),
        "description": spec.kind_detail or spec.kind,
        "docs_url": f"https://docs.modellix.ai/{spec.slug.replace('.', '-')}.md",
        "provider": provider,
    }


def visible_models(
    pinner: Pinner,
    catalog: Catalog,
    items: list[dict[str, Any]],
    *,
    complete: bool,
    allowed: Collection[str] | None = None,
    show_aliases: bool = False,
) -> list[dict[str, Any]]:
    """The entries of ``items`` a caller may submit, then (``complete``) catalog-only models
    and, if asked, the aliases."""
    submittable = set(pinner.submittable_slugs())

    def permitted(*names: str) -> bool:
        return allowed is None or any(name in allowed for name in names)

    def marked(item: Mapping[str, Any]) -> dict[str, Any]:
        validation = "catalog" if item["slug"] in catalog else RULE_STATUS
        return {**item, "proxy_validation": validation}

    shown: list[dict[str, Any]] = []
    by_slug: dict[str, dict[str, Any]] = {}
    for item in items:
        slug = item["slug"]
        if slug in submittable and permitted(slug):
            entry = marked(item)
            shown.append(entry)
            by_slug[slug] = entry
    if not complete:
        return shown
    for slug in sorted(submittable - set(by_slug)):
        spec = catalog.get(slug)
        if spec is not None and permitted(slug):
            entry = marked(catalog_item(spec))
            shown.append(entry)
            by_slug[slug] = entry
    if show_aliases:
        for alias, target in sorted(pinner.aliases.items()):
            base = by_slug.get(target)
            if base is not None and permitted(alias, target):
                described = f"alias of {target}"
                shown.append({**base, "slug": alias, "alias_of": target, "description": described})
    return shown


def _document(reply: Reply) -> dict[str, Any] | None:
    if reply.status != 200:
        return None
    try:
        document = json.loads(reply.body)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        return None
    return document


def _relay(reply: Reply) -> web.Response:
    headers = CIMultiDict(
        (k, v) for k, v in end_to_end(reply.headers).items() if k.lower() not in _RELAYED
    )
    return web.Response(status=reply.status, body=reply.body, headers=headers)


async def handle_models(request: web.Request) -> web.StreamResponse:
    """Forward the list request, then answer with the submittable part of the list."""
    ctx = request[CONTEXT]
    runtime = request.app[RUNTIME]
    settings = request.app[SETTINGS]
    route = request[ROUTE]
    authorization = request.headers.get("Authorization")
    identity = await access.identify(runtime.keyring, authorization)
    headers = upstream_headers(request, settings, keep_length=False)
    access.swap(headers, identity)
    headers.popall("Accept-Encoding", None)  # the body is read and rewritten here
    started = time.perf_counter()
    ctx.upstream_attempts = 1
    try:
        reply = await request.app[UPSTREAM].fetch("GET", route.target, headers, None, "models")
    except TransportFailure as failure:
        raise transport_error(failure, paid=False) from failure
    ctx.upstream_seconds = time.perf_counter() - started
    document = _document(reply)
    if document is None:
        return _relay(reply)
    pinner = runtime.pinner
    complete = not route.query  # a filtered or paged answer is not the whole list
    try:
        items = parse_models(document, pinner.listing.settings.max_models)
        if complete and pinner.listing.enabled:
            pinner.listing.update(document)
    except ListUnavailable:
        return _relay(reply)
    if not complete:
        await pinner.listing.ensure(headers.get("Authorization"))
    shown = visible_models(
        pinner,
        runtime.catalog,
        items,
        complete=complete,
        allowed=identity.caller.allowed_models if identity is not None else None,
        show_aliases=settings.models.upstream_list.show_aliases,
    )
    out = web.json_response({**document, "models": shown})
    for name, value in reply.headers.items():
        if name.lower().startswith("x-ratelimit-"):
            out.headers.add(name, value)
    return out
