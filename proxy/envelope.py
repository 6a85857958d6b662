"""Every refusal in the upstream's JSON envelope, aiohttp's own included.

The proxy's refusals are ``ProxyError`` and rendered by the middleware. A few answers
come from aiohttp itself, as plain text: a path outside the routes (404), a method a
route does not take (405), a body over ``max_body_bytes`` (413), an ``Expect`` header
it cannot meet (417, answered before any middleware runs). ``envelope_refusal`` runs
when any answer is prepared (``on_response_prepare``, ``proxy.middleware.prepare``) and
rewrites such a plain-text
refusal as ``{"code", "message", "error_type", "request_id"}``, keeping its status and
headers (``Allow`` of a 405).
"""

from __future__ import annotations

import os
from http import HTTPStatus

import orjson
from aiohttp import web

from proxy import errors
from proxy.context import RequestContext

# Statuses with a ProxyError of their own: its category and reason, as the proxy's.
_KNOWN: dict[int, type[errors.ProxyError]] = {
    cls.status: cls
    for cls in (
        errors.BadRequest,
        errors.Unauthorized,
        errors.Forbidden,
        errors.NotFound,
        errors.MethodNotAllowed,
        errors.PayloadTooLarge,
        errors.TooManyRequests,
        errors.InternalError,
        errors.ServiceUnavailable,
    )
}
_DETAILS = {
    404: "no such path; the proxy serves /api/v1/..., /healthz and /readyz",
    405: "this path does not take that method",
    413: "the body is larger than the proxy accepts",
    417: "the Expect header cannot be met; send the body without it",
}


def refusal_envelope(status: int, request_id: str) -> dict[str, object]:
    """The upstream-shaped body for an answer of ``status`` that aiohttp made."""
    known = _KNOWN.get(status)
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    category = known.category if known is not None else phrase
    reason = known.reason if known is not None else phrase.lower().replace(" ", "_")
    detail = _DETAILS.get(status, phrase.lower())
    return {
        "code": status,
        "message": f"{category}: {detail}",
        "error_type": reason,
        "request_id": request_id,
    }


def envelope_refusal(response: web.StreamResponse, ctx: RequestContext | None) -> None:
    """A plain-text 4xx/5xx becomes the upstream's envelope (``ctx``: the request's, if any)."""
    if (
        response.status < 400
        or not isinstance(response, web.Response)
        or response.content_type != "text/plain"
    ):
        return
    request_id = ctx.request_id if ctx is not None else os.urandom(16).hex()
    response.headers["X-Request-Id"] = request_id
    body = orjson.dumps(refusal_envelope(response.status, request_id))
    response.body = body
    response.content_type = "application/json"
    response.headers["Content-Length"] = str(len(body))  # aiohttp's text had set its own
