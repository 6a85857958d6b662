"""Who may call which admin route: the route table, and the check in front of every route.

Every admin route is listed here with the least role that may call it (``viewer`` reads,
``finance`` also changes budgets, ``operator`` does everything); a test asserts that each
route the admin app serves is listed. A route missing from the table needs ``operator``
(it fails closed). A caller without the role gets 403 naming the role needed, and nothing
changes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import orjson
from aiohttp import web

from proxy.admin_input import refuse_unstorable
from proxy.audit.tokens import AdminCredentials, Principal
from proxy.audit.trail import Actor, recorded
from proxy.envelope import refusal_envelope
from proxy.errors import Forbidden, ProxyError, Unauthorized
from proxy.middleware import error_response
from proxy.state import ADMIN_RUNTIME
from proxy.stores.audit_records import AuditDraft, Role

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ADMIN_CREDENTIALS = web.AppKey("admin_credentials", AdminCredentials)
PRINCIPAL = web.RequestKey("admin_principal", Principal)
REQUEST_ID = web.RequestKey("admin_request_id", str)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

VIEWER, FINANCE, OPERATOR = Role.VIEWER, Role.FINANCE, Role.OPERATOR

ROUTE_ROLES: dict[tuple[str, str], Role] = {
    ("GET", "/admin/jobs"): VIEWER,
    ("GET", "/admin/jobs/{task_id}"): VIEWER,
    ("POST", "/admin/jobs/{task_id}/reconcile"): OPERATOR,
    ("GET", "/admin/spend"): VIEWER,
    ("GET", "/admin/intents"): VIEWER,
    ("GET", "/admin/reservations"): VIEWER,
    ("POST", "/admin/reservations/{reservation_id}/release"): OPERATOR,
    ("GET", "/admin/keys"): VIEWER,
    ("POST", "/admin/keys"): OPERATOR,
    ("DELETE", "/admin/keys/{key_id}"): OPERATOR,
    ("GET", "/admin/budgets"): VIEWER,
    ("PUT", "/admin/budgets/{name}"): FINANCE,
    ("DELETE", "/admin/budgets/{name}"): FINANCE,
    ("GET", "/admin/report"): VIEWER,
    ("GET", "/admin/export/focus"): VIEWER,
    ("GET", "/admin/webhooks/deliveries"): VIEWER,
    ("GET", "/admin/webhooks/deliveries/{delivery_id}"): VIEWER,
    ("POST", "/admin/webhooks/deliveries/{delivery_id}/redeliver"): OPERATOR,
    ("GET", "/admin/webhooks/endpoints"): VIEWER,
    ("PUT", "/admin/webhooks/endpoints/{caller}"): OPERATOR,
    ("DELETE", "/admin/webhooks/endpoints/{caller}"): OPERATOR,
    ("GET", "/admin/balance"): VIEWER,
    ("GET", "/admin/accounts"): VIEWER,
    ("GET", "/admin/admission"): VIEWER,
    ("POST", "/admin/admission/{queue_id}/cancel"): OPERATOR,
    ("GET", "/admin/schemas"): VIEWER,
    ("GET", "/admin/schemas/{provider}/{model}"): VIEWER,
    ("POST", "/admin/schemas/{provider}/{model}/accept"): OPERATOR,
    ("GET", "/admin/audit"): VIEWER,
    ("GET", "/admin/tokens"): OPERATOR,
    ("POST", "/admin/tokens"): OPERATOR,
    ("POST", "/admin/tokens/{token_id}/rotate"): OPERATOR,
    ("DELETE", "/admin/tokens/{token_id}"): OPERATOR,
}


def role_needed(request: web.Request) -> Role | None:
    """The least role for this request's route; ``None`` when no route matched (404/405)."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return ROUTE_ROLES.get((method, resource.canonical), OPERATOR)


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id", "")
    return given if _REQUEST_ID.match(given) else os.urandom(16).hex()


@web.middleware
async def admin_access(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under ``/admin/``: who is calling (401 if nobody), whether their role may (403 if not),
    text no store can keep (400, ``proxy.admin_input``); every error in the upstream's
    envelope."""
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    try:
        if request.path.startswith("/admin/"):
            credentials = request.app[ADMIN_CREDENTIALS]
            authorization = request.headers.get("Authorization", "")
            if not authorization:
                raise Unauthorized("admin token missing: send Authorization: Bearer <token>")
            principal = await credentials.principal(authorization)
            needed = role_needed(request)
            if needed is not None and not principal.role.allows(needed):
                raise Forbidden(
                    f"{request.method} {request.path} needs the {needed.value} role; the admin"
                    f" token {principal.name!r} is {principal.role.value}",
                    reason="role_needed",
                    details={"role_needed": needed.value, "role": principal.role.value},
                )
            request[PRINCIPAL] = principal
            await refuse_unstorable(request)
        return await handler(request)
    except ProxyError as err:
        return error_response(err, request_id)


async def admin_refusals(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: aiohttp's own plain-text refusals on the admin listener (no
    such route, a method the route does not take, a body too large) in the upstream's
    envelope, as every other admin error."""
    if (
        response.status < 400
        or not isinstance(response, web.Response)
        or response.content_type != "text/plain"
    ):
        return
    doc = refusal_envelope(response.status, request.get(REQUEST_ID) or os.urandom(16).hex())
    if response.status == 404:
        doc["message"] = "Not found: no such admin route (docs/admin-api.md lists them)"
    body = orjson.dumps(doc)
    response.body = body
    response.content_type = "application/json"
    response.headers["Content-Length"] = str(len(body))


def actor_of(request: web.Request) -> Actor:
    """The audit trail's who and where for this admin request."""
    return Actor(request[PRINCIPAL].name, "api", request.remote, request[REQUEST_ID])


def audit(
    request: web.Request, action: str, subject: str
) -> AbstractAsyncContextManager[AuditDraft]:
    """The admin action's change and its audit row, in one store transaction."""
    store = request.app[ADMIN_RUNTIME].open_store()
    return recorded(store, actor_of(request), action, subject)
