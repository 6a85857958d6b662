"""Everything under ``/api/v1``: to the submit, poll or pass-through handler."""

from __future__ import annotations

from aiohttp import web

from proxy.context import RouteKind
from proxy.handlers.passthrough import handle_passthrough
from proxy.handlers.poll import handle_poll
from proxy.handlers.submit import handle_submit
from proxy.state import ROUTE


async def handle_api(request: web.Request) -> web.StreamResponse:
    kind = request[ROUTE].kind
    if kind is RouteKind.SUBMIT:
        return await handle_submit(request)
    if kind is RouteKind.POLL:
        return await handle_poll(request)
    return await handle_passthrough(request)
