"""The ``/v1/videos`` routes on the client application, and the session content streams over."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from proxy.config import Settings
from proxy.openai_videos.content import video_content
from proxy.openai_videos.create import create_video
from proxy.openai_videos.door import DOOR, Door, openai_errors
from proxy.openai_videos.handlers import delete_video, remix_video, retrieve_video
from proxy.openai_videos.listing import list_videos
from proxy.openai_videos.mapping import VideoModels
from proxy.runtime import Runtime

BASE = "/v1/videos"


def install(app: web.Application, settings: Settings, runtime: Runtime) -> None:
    """Add OpenAI's Videos API to ``app`` (unless ``openai_videos.enabled`` is off)."""
    if not settings.openai_videos.enabled:
        return
    door = Door(VideoModels(settings.openai_videos, runtime.catalog, runtime.pinner.aliases))
    app[DOOR] = door
    upstream = settings.upstream

    async def content_session(_: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(
            connect=upstream.connect_timeout_seconds, sock_read=upstream.read_timeout_seconds
        )
        door.session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        yield
        await door.session.close()
        door.session = None

    app.cleanup_ctx.append(content_session)
    app.router.add_post(BASE, openai_errors(create_video))
    app.router.add_get(BASE, openai_errors(list_videos), allow_head=False)
    app.router.add_get(BASE + "/{video_id}", openai_errors(retrieve_video), allow_head=False)
    app.router.add_delete(BASE + "/{video_id}", openai_errors(delete_video))
    app.router.add_get(BASE + "/{video_id}/content", openai_errors(video_content), allow_head=False)
    app.router.add_post(BASE + "/{video_id}/remix", openai_errors(remix_video))
