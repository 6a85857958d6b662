"""The upstream's key API for proxy keys: ``GET /api/v1/apikey/validate`` and ``/team/balance``.

A proxy key is the caller's API key, so the proxy answers these two routes for
it the way the upstream answers for its own keys (``reference/modellix-api.md``
§2.5, §2.6), and the official CLI's ``doctor``, ``init`` and ``auth login``
work unchanged:

- ``apikey/validate``: ``200 {"code": 0, "message": "success", "data":
  {"is_valid": true|false}}``. An unknown, malformed, revoked or expired proxy
  key (or, in ``virtual`` mode, no proxy key at all) is ``is_valid: false``,
  never a 401, exactly as the upstream treats a bad key. Nothing goes upstream.
- ``team/balance``: for an active key, what the key can still spend. Where a
  hard budget applies to the key, the least money left in any of them (the
  proxy refuses past it, whatever the team's upstream balance); where none
  applies, the upstream's balance, fetched with the upstream key. An invalid
  key gets the upstream's answer for an invalid key: 401 in its envelope.

Requests that carry the caller's own Modellix key (pass-through and mixed
modes) are forwarded as before. A credential the proxy would refuse on any
other route (not printable ASCII, a proxy key hidden in another shape) is an
invalid key here too.
"""

from __future__ import annotations

import enum
from decimal import Decimal

import structlog
from aiohttp import web

from proxy.context import Caller
from proxy.errors import Unauthorized
from proxy.governance import access
from proxy.governance.budgets import tightest
from proxy.handlers.passthrough import handle_passthrough
from proxy.money import exact
from proxy.routing import BALANCE_NAME, VALIDATE_NAME
from proxy.runtime import Runtime
from proxy.state import CONTEXT, ROUTE, RUNTIME

log = structlog.get_logger("proxy.keyapi")
BALANCE_SOURCE_HEADER = "X-Modellix-Proxy-Balance-Source"
BUDGET_HEADER = "X-Modellix-Proxy-Budget"


class KeyOperation(enum.StrEnum):
    VALIDATE = "validate"
    BALANCE = "balance"


OPERATIONS = {VALIDATE_NAME: KeyOperation.VALIDATE, BALANCE_NAME: KeyOperation.BALANCE}


def _success(data: dict[str, object], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"code": 0, "message": "success", "data": data}, headers=headers)


async def handle_key_api(request: web.Request) -> web.StreamResponse:
    """A ``RouteKind.KEY_API`` request: answered here for a proxy key, else forwarded."""
    runtime = request.app[RUNTIME]
    operation = OPERATIONS.get(request[ROUTE].name)
    if operation is None:
        return await handle_passthrough(request)
    authorization = request.headers.get("Authorization")
    if operation is KeyOperation.VALIDATE:
        try:
            identity = await access.identify(runtime.keyring, authorization)
        except Unauthorized as refused:
            log.info("keyapi.key_invalid", reason=refused.instance_reason)
            return _success({"is_valid": False})
        if identity is None:  # the caller's own Modellix key: the upstream knows
            return await handle_passthrough(request)
        return _success({"is_valid": True})
    identity = await access.identify(runtime.keyring, authorization)  # 401 like the upstream
    if identity is None:
        return await handle_passthrough(request)
    left = await _budget_left(runtime, identity.caller, request[CONTEXT].received_at)
    if left is None:
        return await handle_passthrough(request)  # the team's own balance, with the upstream key
    name, micros = left
    balance = float(round(Decimal(exact(micros)), 4))  # the upstream shows 4 places
    headers = {BALANCE_SOURCE_HEADER: "budget", BUDGET_HEADER: name}
    return _success({"balance": balance}, headers)


async def _budget_left(runtime: Runtime, caller: Caller, now: float) -> tuple[str, int] | None:
    """The tightest hard budget on ``caller`` and the micro-dollars left in it (never below 0)."""
    book, store = runtime.budgets, runtime.store
    if book is None or store is None:
        return None
    applied = await book.for_caller(caller, now)
    if not applied:
        return None
    windows = await store.budget_windows([a.key for a in applied])
    best = tightest([(a, windows.get(a.key)) for a in applied])
    if best is None:
        return None
    budget, left = best
    return budget.budget.name, max(0, left)
