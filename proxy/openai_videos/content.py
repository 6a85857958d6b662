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

Only that URL is fetched, and no credential is sent with it. A redirect from its host is
followed (``models.preflight.max_redirects`` at most) only to an http(s) URL whose host the
SSRF guard allows (``proxy.catalog.netguard``, ``models.preflight.allow_hosts``), checked
again when the connection is made: a file host cannot turn the proxy into a way in to its
own network or the cloud's metadata service (502 ``upstream_unavailable``).

One download is bounded in time and in bytes (``openai_videos.content_max_seconds``,
``content_max_bytes``), whatever the pace of the file host or of the client: a file host
that dribbles bytes keeps neither the proxy's connection nor its client's open past them. A
file that declares more bytes, or an overrun before the answer began, is 502; once the
answer has begun, the proxy closes the connection, the client sees the body cut short, and
the cut is logged at warning (``openai_videos.content_cut``, naming the video, never the
URL).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp import web
from yarl import URL

from proxy.catalog.netguard import GuardError
from proxy.errors import ServiceUnavailable
from proxy.openai_videos.door import DOOR, Door, asker, own_video
from proxy.openai_videos.errors import OpenAIError, invalid
from proxy.stores.records import JobRecord, JobStatus

VARIANTS = frozenset({"video", "thumbnail", "spritesheet"})
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
CHUNK = 256 * 1024
_PASS = ("Content-Type", "Content-Length", "Content-Encoding", "ETag", "Last-Modified")  # as sent
REDIRECTS = frozenset({301, 302, 303, 307, 308})
log = structlog.get_logger("proxy.openai_videos.content")

Cut = Literal["max_seconds", "max_bytes", "file_host_failed"]


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
    door, ref, sent = request.app[DOOR], job.api_ref or "", Sent()
    response = web.StreamResponse(status=200)
    bound = asyncio.timeout(door.max_seconds)
    try:
        async with bound:
            cut = await _relay(request, response, door, url, ref, sent)
    except aiohttp.ClientError as exc:
        if request.transport is None or request.transport.is_closing():
            return response  # the client went away: nothing more to send, nothing to report
        if response.prepared:
            cut = "file_host_failed"
        else:
            raise _unavailable(f"The upstream's file host could not be reached for {ref}.") from exc
    except TimeoutError:
        if not bound.expired():
            raise
        cut = "max_seconds"
        if not response.prepared:
            _log_cut(door, ref, cut, sent)
            raise _unavailable(
                f"The upstream's file host did not send the file of {ref} within"
                f" {door.max_seconds:g} s (openai_videos.content_max_seconds)."
            ) from None
    if cut is not None:
        _log_cut(door, ref, cut, sent)
        if request.transport is not None:  # the body ends short of its length, or unchunked
            request.transport.close()
    return response


@dataclass
class Sent:
    """The bytes of a file relayed so far."""

    bytes: int = 0


async def _relay(
    request: web.Request, response: web.StreamResponse, door: Door, url: str, ref: str, sent: Sent
) -> Cut | None:
    """Stream the file at ``url`` into ``response``; ``max_bytes`` if it ran past the bound
    (not all sent), ``None`` once all of it was."""
    async with fetch(door, url, ref) as upstream:
        if upstream.status in (404, 410):
            raise OpenAIError.of(
                404,
                f"The file of {ref} has expired upstream.",
                param="video_id",
                code="video_expired",
            )
        if upstream.status != 200:
            raise OpenAIError.of(
                502,
                f"The upstream's file host answered {upstream.status} for {ref}.",
                code="upstream_unavailable",
            )
        declared = upstream.content_length
        if declared is not None and declared > door.max_bytes:
            _log_cut(door, ref, "max_bytes", sent)
            raise _unavailable(
                f"The file of {ref} is {declared} bytes, more than this proxy relays"
                f" ({door.max_bytes}, openai_videos.content_max_bytes)."
            )
        for name in _PASS:
            if name in upstream.headers:
                response.headers[name] = upstream.headers[name]
        await response.prepare(request)
        async for chunk in upstream.content.iter_chunked(CHUNK):
            if sent.bytes + len(chunk) > door.max_bytes:
                return "max_bytes"
            await response.write(chunk)
            sent.bytes += len(chunk)
        await response.write_eof()
        return None


def _log_cut(door: Door, ref: str, cut: Cut, sent: Sent) -> None:
    log.warning(
        "openai_videos.content_cut",
        video_id=ref,
        reason=cut,
        bytes_sent=sent.bytes,
        max_bytes=door.max_bytes,
        max_seconds=door.max_seconds,
    )


def _unavailable(detail: str) -> OpenAIError:
    return OpenAIError.of(502, detail, code="upstream_unavailable", reason="upstream_unavailable")


@asynccontextmanager
async def fetch(door: Door, url: str, ref: str) -> AsyncIterator[aiohttp.ClientResponse]:
    """The answer to ``GET url``, its redirects followed only where the SSRF guard allows."""
    session = door.session
    for _ in range(door.max_redirects + 1):
        if session is None:
            raise ServiceUnavailable("the proxy is starting", reason="unavailable")
        async with session.get(url, allow_redirects=False) as answer:
            location = answer.headers.get("Location")
            if answer.status not in REDIRECTS or location is None:
                yield answer
                return
        try:
            target = URL(url).join(URL(location))
        except ValueError as exc:
            raise _unavailable(f"The upstream's file host redirected {ref} nowhere.") from exc
        url = await _vetted(door, target, ref)
        session = door.guarded
    raise _unavailable(f"The upstream's file host redirected too many times for {ref}.")


async def _vetted(door: Door, target: URL, ref: str) -> str:
    """``target`` if the proxy may follow a redirect to it, else 502 naming the video."""
    if target.scheme not in ("http", "https") or not target.raw_host:
        raise _unavailable(f"The upstream's file host redirected {ref} to a non-HTTP URL.")
    try:
        await door.guard.resolve(target.raw_host)
    except GuardError as exc:
        raise _unavailable(
            f"The upstream's file host redirected {ref} to an address the proxy does not"
            f" reach ({exc.detail[:200]})."
        ) from exc
    return str(target)
