"""What a request looks like on its way upstream, and where the proxy says it lives."""

from __future__ import annotations

from itertools import chain

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.config import Settings
from proxy.governance.access import strip_proxy_tokens
from proxy.governance.keys import Identity
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
    return _upstream_headers(request, settings, keep_length)[0]


def _upstream_headers(
    request: web.Request, settings: Settings, keep_length: bool
) -> tuple[CIMultiDict[str], list[str]]:
    """``upstream_headers``, and the names of the headers dropped for carrying a proxy key."""
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
    # a proxy key never leaves (X-Forwarded-Host is the client's too)
    return out, strip_proxy_tokens(out)


# A client polls again and again with the same few headers, from the same address: what
# goes upstream for them is made once and kept, read-only, in this process's memory (where
# the requests' credentials are anyway). At most ``_KEPT`` header sets (all forgotten when
# full), each of at most ``_KEPT_BYTES`` bytes of names and values as received.
_KEPT = 256
_KEPT_BYTES = 4096
_kept_poll_headers: dict[tuple[object, ...], CIMultiDictProxy[str]] = {}


def poll_headers(
    request: web.Request, settings: Settings, identity: Identity | None
) -> CIMultiDictProxy[str]:
    """``upstream_headers`` of a poll (no body), the upstream key in place of a proxy key's
    ``Authorization`` (``identity``).

    They depend only on the client's headers (``raw_headers``, as received), its address,
    the scheme and host it used, whether forwarded headers are trusted, and the upstream
    key: the same of all these gives the same headers, so they are made once. A request
    whose headers dropped more than its ``Authorization`` for carrying a proxy key has its
    own made every time (each such drop is logged).
    """
    raw = request.raw_headers
    trusted = settings.trust_forwarded_headers
    upstream_key = None if identity is None else identity.upstream_authorization
    key = (raw, request.remote, request.scheme, request.host, trusted, upstream_key)
    kept = _kept_poll_headers.get(key)
    if kept is not None:
        return kept
    out, dropped = _upstream_headers(request, settings, False)
    if upstream_key is not None:
        out["Authorization"] = upstream_key
    made = CIMultiDictProxy(out)
    if (
        all(name.lower() == "authorization" for name in dropped)
        and sum(map(len, chain.from_iterable(raw))) <= _KEPT_BYTES
    ):
        if len(_kept_poll_headers) >= _KEPT:
            _kept_poll_headers.clear()
        _kept_poll_headers[key] = made
    return made


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
