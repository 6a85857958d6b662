"""What a request looks like on its way upstream, and where the proxy says it lives."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from proxy.config import Settings
from proxy.governance.access import strip_proxy_tokens
from proxy.upstream.client import HOP_BY_HOP, end_to_end_pairs

# Request headers a proxy must not pass on (besides the hop-by-hop ones).
_DROP_REQUEST = frozenset(
    {"host", "expect", "content-length", "x-forwarded-host", "x-modellix-callback-url"}
)
# Dropped from every request; the client's X-Forwarded-For/-Proto too unless trusted.
_DROP_TRUSTED = HOP_BY_HOP | _DROP_REQUEST
_DROP_UNTRUSTED = _DROP_TRUSTED | {"x-forwarded-for", "x-forwarded-proto"}


def upstream_headers(
    request: web.Request, settings: Settings, *, keep_length: bool
) -> CIMultiDict[str]:
    """The client's end-to-end headers, with ``X-Forwarded-*`` set for the upstream.

    ``Authorization`` passes untouched, unless it (or any other header) carries a
    proxy key: such headers are dropped here, and the caller sets the upstream key.
    ``Content-Length`` is kept only when the body is streamed as received (``keep_length``).
    One pass over the client's headers (``end_to_end_pairs``), with one set of names to drop.
    """
    trusted = settings.trust_forwarded_headers
    drop = _DROP_TRUSTED if trusted else _DROP_UNTRUSTED
    out = CIMultiDict(end_to_end_pairs(request.headers, drop))
    if keep_length and request.content_length is not None:
        out["Content-Length"] = str(request.content_length)
    peer = request.remote or "unknown"
    prior = out.get("X-Forwarded-For") if trusted else None
    out["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    proto, host = client_facing(request, settings)
    out["X-Forwarded-Proto"] = proto
    out["X-Forwarded-Host"] = host
    strip_proxy_tokens(out)  # a proxy key never leaves (X-Forwarded-Host is the client's too)
    return out


def client_facing(request: web.Request, settings: Settings) -> tuple[str, str]:
    """Scheme and host the client used, honouring ``X-Forwarded-*`` only when trusted."""
    proto = request.scheme
    host = request.host
    if settings.trust_forwarded_headers:
        fwd_proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
        fwd_host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if fwd_proto in {"http", "https"}:
            proto = fwd_proto
        if fwd_host:
            host = fwd_host
    return proto, host


def public_origin(request: web.Request, settings: Settings) -> str:
    """The origin clients should use to reach the proxy (for ``get_result.url``)."""
    if settings.public_origin:
        return settings.public_origin.rstrip("/")
    proto, host = client_facing(request, settings)
    return f"{proto}://{host}"
