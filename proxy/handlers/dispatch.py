"""Everything under ``/api/v1``: to the submit, poll, key API or pass-through handler.

Only routes ``proxy.routing.classify`` recognised reach a handler that talks to
the upstream; every other path is refused here in the upstream's envelope,
before any upstream call.
"""

from __future__ import annotations

from aiohttp import web

from proxy.context import RouteKind
from proxy.errors import BadRequest, MethodNotAllowed, NotFound, ProxyError
from proxy.governance import access
from proxy.handlers import keyapi
from proxy.handlers.media import handle_media
from proxy.handlers.models import MODELS_NAME, handle_models
from proxy.handlers.passthrough import handle_passthrough
from proxy.handlers.poll import handle_poll
from proxy.handlers.queued import handle_queued
from proxy.handlers.submit import handle_submit
from proxy.routing import MEDIA_FILE_NAME, MEDIA_NAME, Route
from proxy.state import ROUTE
from proxy.stores.admission_records import is_queue_id


async def handle_api(request: web.Request) -> web.StreamResponse:
    route = request[ROUTE]
    kind = route.kind
    access.refuse_token_in_url(request.raw_path)  # a proxy key in a URL is never forwarded
    if kind is RouteKind.SUBMIT:
        return await handle_submit(request)
    if kind is RouteKind.POLL:
        if is_queue_id(route.task_id or ""):  # a submit the admission queue holds
            return await handle_queued(request)
        return await handle_poll(request)
    if kind is RouteKind.KEY_API:
        return await handle_key_api(request)
    if kind is RouteKind.PASSTHROUGH:
        if route.name == MODELS_NAME:  # filtered to what this proxy lets the caller submit
            return await handle_models(request)
        if route.name in (MEDIA_NAME, MEDIA_FILE_NAME):  # a proxy key sees only its own files
            return await handle_media(request)
        return await handle_passthrough(request)
    raise refusal(route)


async def handle_key_api(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/apikey/validate`` and ``/api/v1/team/balance`` (``request[ROUTE].name``)."""
    return await keyapi.handle_key_api(request)


def refusal(route: Route) -> ProxyError:
    """The error for a path the proxy does not forward."""
    refused = route.refusal
    if refused is None:
        # The router sent a path here that was not literally under /api/v1/ (say
        # "/%61pi/v1/..." or an absolute-form target): refuse rather than guess.
        return NotFound(
            "the path must start with /api/v1/ exactly as sent", reason="route_not_allowed"
        )
    if refused.status == 405:
        headers = {"Allow": refused.allow} if refused.allow else None
        return MethodNotAllowed(refused.detail, headers=headers, reason=refused.reason)
    if refused.status == 404:
        return NotFound(refused.detail, reason=refused.reason)
    return BadRequest(f"bad path: {refused.detail}", reason=refused.reason)
