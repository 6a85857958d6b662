"""``GET|HEAD /models/{provider}/{model_id}/api_schema`` on the client port: the pinned schema.

The official CLI (0.0.10, ``model get-schema``) asks its base URL for this path, with no
key, so a client pointed at the proxy reads the schema the proxy validates with: the
pinned version (under the ``hold`` policy that may be older than what the origin serves
now, until an operator accepts the change). The document is answered as it was published,
except that each ``servers[].url`` names the proxy's public origin instead of the upstream's
(the path kept), as ``get_result.url`` does in submit answers, so a client that follows the
schema's endpoint stays behind the proxy. The CLI accepts only an https endpoint or plain
http on a loopback name; for any other origin the published URL is left as it was.
``X-Modellix-Proxy-Schema-Hash`` names the pinned (published) version. An alias answers its
target's schema. Refusals take the schema origin's shape, ``{"code": ..., "message": ...}``:

- 404 ``Model not found: provider/model`` for a name this proxy does not serve;
- 503 when no version is pinned and the origin cannot be reached (or schemas are off).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from proxy.errors import ModelNotFound
from proxy.forwarding import public_origin
from proxy.state import RUNTIME, SETTINGS

_SEGMENT = re.compile(r"[A-Za-z0-9._~-]{1,128}")
HASH_HEADER = "X-Modellix-Proxy-Schema-Hash"


_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _endpoint_origin(origin: str) -> bool:
    """Whether the CLI takes ``origin`` as a schema endpoint (https, or http on loopback)."""
    parts = urlsplit(origin)
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_NAMES


def with_origin(document: dict[str, Any], origin: str) -> dict[str, Any]:
    """``document`` with each ``servers[].url`` moved to ``origin`` (path kept)."""
    servers = document.get("servers")
    if not isinstance(servers, list) or not _endpoint_origin(origin):
        return document
    moved: list[Any] = []
    for server in servers:
        url = server.get("url") if isinstance(server, dict) else None
        if isinstance(url, str) and urlsplit(url).scheme in {"http", "https"}:
            server = {**server, "url": origin + urlsplit(url).path}
        moved.append(server)
    return {**document, "servers": moved}


def _answer(status: int, message: str) -> web.Response:
    return web.json_response({"code": status, "message": message}, status=status)


async def handle_api_schema(request: web.Request) -> web.StreamResponse:
    provider, model = request.match_info["provider"], request.match_info["model"]
    if not (_SEGMENT.fullmatch(provider) and _SEGMENT.fullmatch(model)):
        return _answer(404, "Model not found")
    slug = f"{provider}/{model}"
    runtime = request.app[RUNTIME]
    pinner, registry = runtime.pinner, runtime.schemas
    if pinner.needs_listing(slug):
        await pinner.listing.ensure(request.headers.get("Authorization"))
    try:
        result = pinner.resolve_for_anyone(slug)  # no key: any account's model
    except ModelNotFound:
        return _answer(404, f"Model not found: {slug}")
    if registry is None or not registry.enabled:
        return _answer(503, "Service unavailable: published schemas are off on this proxy")
    if result.outcome == "permissive":  # not a model this proxy knows: only what is pinned
        pinned = registry.get(result.pinned)
    else:
        pinned = await registry.ensure(result.pinned)
    if pinned is None:
        return _answer(
            503, f"Service unavailable: no schema of {result.pinned} could be fetched yet"
        )
    origin = public_origin(request, request.app[SETTINGS])
    document = with_origin(pinned.document, origin)
    return web.json_response(document, headers={HASH_HEADER: pinned.hash})
