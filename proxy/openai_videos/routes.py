"""The ``/v1/videos`` routes on the client application, and the session content streams over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http import HTTPStatus

import aiohttp
import orjson
from aiohttp import web

from proxy.catalog.netguard import HostGuard
from proxy.catalog.preflight import GuardedResolver
from proxy.config import Settings
from proxy.openai_videos import errors
from proxy.openai_videos.content import video_content
from proxy.openai_videos.create import create_video
from proxy.openai_videos.door import DOOR, Door, openai_errors
from proxy.openai_videos.handlers import delete_video, retrieve_video
from proxy.openai_videos.listing import list_videos
from proxy.openai_videos.mapping import VideoModels
from proxy.openai_videos.remix import remix_models, remix_video
from proxy.runtime import Runtime

BASE = "/v1/videos"
_STATUSES = frozenset(s.value for s in HTTPStatus)


def install(app: web.Application, settings: Settings, runtime: Runtime) -> None:
    """Add OpenAI's Videos API to ``app`` (unless ``openai_videos.enabled`` is off)."""
    if not settings.openai_videos.enabled:
        return
    preflight = settings.models.preflight
    door = Door(
        VideoModels(settings.openai_videos, runtime.catalog, runtime.pinner.aliases),
        HostGuard(preflight.allow_hosts),
        preflight.max_redirects,
        settings.openai_videos.content_max_seconds,
        settings.openai_videos.content_max_bytes,
        remix_models(settings.openai_videos, runtime.catalog),
    )
    app[DOOR] = door
    upstream = settings.upstream

    async def content_session(_: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(
            connect=upstream.connect_timeout_seconds, sock_read=upstream.read_timeout_seconds
        )
        door.session, door.guarded = (
            aiohttp.ClientSession(
                timeout=timeout,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # no file host's cookie reaches another fetch
                connector=connector,
            )
            for connector in (
                aiohttp.TCPConnector(),
                aiohttp.TCPConnector(resolver=GuardedResolver(door.guard), use_dns_cache=False),
            )
        )
        yield
        await door.session.close()
        await door.guarded.close()
        door.session = door.guarded = None

    app.cleanup_ctx.append(content_session)
    app.on_response_prepare.insert(0, openai_refusals)  # before the upstream-envelope rewrite
    app.router.add_post(BASE, openai_errors(create_video))
    app.router.add_get(BASE, openai_errors(list_videos), allow_head=False)
    app.router.add_get(BASE + "/{video_id}", openai_errors(retrieve_video), allow_head=False)
    app.router.add_delete(BASE + "/{video_id}", openai_errors(delete_video))
    app.router.add_get(BASE + "/{video_id}/content", openai_errors(video_content), allow_head=False)
    app.router.add_post(BASE + "/{video_id}/remix", openai_errors(remix_video))


async def openai_refusals(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: aiohttp's own plain-text refusals under ``/v1/`` (a path or a
    method no route takes) in OpenAI's envelope, as every other answer of this door."""
    if (
        not request.path.startswith("/v1/")
        or response.status < 400
        or not isinstance(response, web.Response)
        or response.content_type != "text/plain"
    ):
        return
    phrase = HTTPStatus(response.status).phrase if response.status in _STATUSES else "Error"
    message = f"{phrase}: {request.method} {request.path[:200]} is not a route of this API."
    body = orjson.dumps(
        errors.body(message, response.status, param=None, code=phrase.lower().replace(" ", "_"))
    )
    response.body = body
    response.content_type = "application/json"
    response.headers["Content-Length"] = str(len(body))
