"""``GET /api/v1/models``: the upstream's list, cut to exactly what this proxy lets a caller submit.

The request goes upstream as a pass-through would (the caller's key, or the upstream key
for a proxy key), so the upstream still decides who may list. A 200 answer in the
documented shape (top-level ``models`` array, ``reference/modellix-api.md`` §2.3) is
filtered; anything else is relayed unchanged. What the caller sees:

- every listed model that is submittable under the current policy, as the upstream
  listed it, display price included (disabled slugs and, for a proxy key with an
  allow-list, models outside it removed), plus ``proxy_validation``: ``upstream-schema``
  (validated against its pinned published schema), ``catalog`` (validated by the catalog
  spec) or ``upstream-listed`` (checked only for what can be known);
- with ``models.upstream_list.show_aliases``, the aliases, each with ``alias_of``.

Catalog models the upstream does not list are not shown: a client that trusts the list
(the CLI, agent tools) should never be offered a model the upstream does not serve.

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
from proxy.catalog.schema_doc import RULE_STATUS as PUBLISHED
from proxy.catalog.schema_registry import SchemaRegistry
from proxy.catalog.upstream_models import ListUnavailable, parse_models
from proxy.forwarding import upstream_headers
from proxy.governance import access
from proxy.state import CONTEXT, ROUTE, RUNTIME, SETTINGS, UPSTREAM
from proxy.upstream.client import Reply, TransportFailure, end_to_end
from proxy.upstream.failures import transport_error

MODELS_NAME = "/api/v1/models"  # the route name ``proxy.routing`` gives the list
_RELAYED = frozenset({"content-length", "content-encoding", "transfer-encoding"})


def validation_source(slug: str, catalog: Catalog, schemas: SchemaRegistry | None) -> str:
    """What checks a submit for ``slug``: upstream-schema, catalog or upstream-listed."""
    if schemas is not None and schemas.get(slug) is not None:
        return PUBLISHED
    return "catalog" if slug in catalog else RULE_STATUS


def visible_models(
    pinner: Pinner,
    catalog: Catalog,
    items: list[dict[str, Any]],
    *,
    complete: bool,
    account: str | None = None,
    allowed: Collection[str] | None = None,
    show_aliases: bool = False,
    schemas: SchemaRegistry | None = None,
) -> list[dict[str, Any]]:
    """The entries of ``items`` a caller may submit, then (``complete``, if asked) the aliases
    of the models shown. Catalog models the upstream does not list are left out: the list
    says what the upstream serves to this key."""
    submittable = set(pinner.submittable_slugs(account))

    def permitted(*names: str) -> bool:
        return allowed is None or any(name in allowed for name in names)

    def marked(item: Mapping[str, Any]) -> dict[str, Any]:
        return {**item, "proxy_validation": validation_source(item["slug"], catalog, schemas)}

    shown: list[dict[str, Any]] = []
    by_slug: dict[str, dict[str, Any]] = {}
    for item in items:
        slug = item["slug"]
        if slug in submittable and permitted(slug):
            entry = marked(item)
            shown.append(entry)
            by_slug[slug] = entry
    if complete and show_aliases:
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
    caller = identity.caller if identity is not None else None
    account = caller.account if caller is not None else None
    listing = pinner.lists.of(account)  # the list was asked with this account's key
    complete = not route.query  # a filtered or paged answer is not the whole list
    # A pass-through caller's key may see other models than the account whose list this is:
    # its answer is its own, and replaces the list only when no account key fetches it.
    asked_with_its_key = caller is not None or not listing.has_own_key
    try:
        items = parse_models(document, listing.settings.max_models)
        if complete and listing.enabled and asked_with_its_key:
            listing.update(document)
    except ListUnavailable:
        return _relay(reply)
    if not complete:
        await listing.ensure(headers.get("Authorization"))
    shown = visible_models(
        pinner,
        runtime.catalog,
        items,
        complete=complete,
        account=account,
        allowed=caller.allowed_models if caller is not None else None,
        show_aliases=settings.models.upstream_list.show_aliases,
        schemas=runtime.schemas,
    )
    out = web.json_response({**document, "models": shown})
    for name, value in reply.headers.items():
        if name.lower().startswith("x-ratelimit-"):
            out.headers.add(name, value)
    return out
