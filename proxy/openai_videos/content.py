"""``GET /v1/videos/{video_id}/content``: the video's bytes, streamed from its result URL.

The proxy fetches the URL the upstream named in the finished task (recorded by the ledger)
and streams it to the client as it arrives, with the upstream file's type and length, so
a client never needs to reach the upstream's file host itself. ``variant=video`` (the
default) is the video; ``thumbnail`` is answered with an image the task returned beside the
video, and 404 ``variant_not_available`` when it returned none: a finished Modellix task's
result resources are its video alone (no cover or preview image; the upstream reference
names none), so that is the answer today, as it is for every ``spritesheet``. A video that
is not finished is 404 ``video_not_ready``; one whose file the upstream no longer serves,
404 ``video_expired``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from proxy.errors import ServiceUnavailable
from proxy.openai_videos.door import DOOR, asker, own_video
from proxy.openai_videos.errors import OpenAIError, invalid
from proxy.stores.records import JobRecord, JobStatus

VARIANTS = frozenset({"video", "thumbnail", "spritesheet"})
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
CHUNK = 256 * 1024
_PASS = ("Content-Type", "Content-Length", "Content-Encoding", "ETag", "Last-Modified")  # as sent


def pick(job: JobRecord, variant: str) -> str | None:
    """The result URL of ``variant``, or ``None`` if the task returned none: the video, or an
    image the task returned beside it as the thumbnail (no Modellix result resource is a
    spritesheet)."""
    if variant == "spritesheet":
        return None
    for url in job.output_urls:
        image = urlsplit(url).path.lower().endswith(IMAGE_SUFFIXES)
        if image == (variant == "thumbnail"):
            return url
    return None


async def video_content(request: web.Request) -> web.StreamResponse:
    who = await asker(request)
    job = await own_video(request, who)
    variant = request.query.get("variant", "video")
    if variant not in VARIANTS:
        raise invalid("variant must be one of video, thumbnail, spritesheet.", "variant")
    if job.status is not JobStatus.SUCCESS:
        raise OpenAIError.of(
            404,
            f"Video {job.api_ref} is not ready: its status is {job.status.value}.",
            param="video_id",
            code="video_not_ready",
        )
    url = pick(job, variant)
    if url is None:
        raise OpenAIError.of(
            404,
            f"The {variant} of {job.api_ref} is not available: {job.pinned_slug} returns none.",
            param="variant",
            code="variant_not_available",
        )
    session = request.app[DOOR].session
    if session is None:
        raise ServiceUnavailable("the proxy is starting", reason="unavailable")
    try:
        async with session.get(url, allow_redirects=True) as upstream:
            if upstream.status in (404, 410):
                raise OpenAIError.of(
                    404,
                    f"The file of {job.api_ref} has expired upstream.",
                    param="video_id",
                    code="video_expired",
                )
            if upstream.status != 200:
                raise OpenAIError.of(
                    502,
                    f"The upstream's file host answered {upstream.status} for {job.api_ref}.",
                    code="upstream_unavailable",
                )
            response = web.StreamResponse(status=200)
            for name in _PASS:
                if name in upstream.headers:
                    response.headers[name] = upstream.headers[name]
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(CHUNK):
                await response.write(chunk)
            await response.write_eof()
            return response
    except aiohttp.ClientError as exc:
        raise OpenAIError.of(
            502,
            f"The upstream's file host could not be reached for {job.api_ref}.",
            code="upstream_unavailable",
            reason="upstream_unavailable",
        ) from exc
