"""What every ``/v1/videos`` route shares: the door's state, its errors, the caller's video.

Each route is wrapped by ``openai_errors``: a refusal anywhere below it (the pipeline's, the
store's, the upstream's) reaches the client in OpenAI's envelope. ``own_video`` answers a
video id only to the caller who made it (a proxy key, or a pass-through key's fingerprint),
and 404 to anyone else, as OpenAI does for a video of another project.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from proxy.catalog.netguard import HostGuard
from proxy.config import Settings
from proxy.errors import ProxyError, ServiceUnavailable, Unauthorized
from proxy.governance import access
from proxy.governance.keys import Identity
from proxy.openai_videos import queued
from proxy.openai_videos.errors import OpenAIError, not_found
from proxy.openai_videos.mapping import VideoModels
from proxy.openai_videos.objects import Timing
from proxy.state import RUNTIME, SETTINGS
from proxy.stores.base import Store, StoreUnavailableError
from proxy.stores.records import JobRecord

API = "openai"
VIDEO_PREFIX = queued.VIDEO_PREFIX
MAX_ID_CHARS = 128

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Door:
    """The door's own parts: model resolution, and the client sessions content streams over
    (``session`` for the result URL the upstream named; ``guarded``, whose connections only
    reach addresses ``guard`` allows, for every URL a file host redirects to), and the bounds
    of one content download; ``remixes``, the family -> v2v slug map a remix looks up
    (``remix.remix_models``, made once from the settings and the catalog)."""

    models: VideoModels
    guard: HostGuard
    max_redirects: int = 3
    max_seconds: float = 900.0  # one content download, start to end
    max_bytes: int = 1024**3  # one content download's bytes
    remixes: Mapping[str, str] = field(default_factory=dict)
    session: aiohttp.ClientSession | None = None
    guarded: aiohttp.ClientSession | None = None


DOOR = web.AppKey("openai_videos", Door)


def openai_errors(handler: Handler) -> Handler:
    """``handler`` with every refusal re-dressed in OpenAI's envelope."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ProxyError as err:
            raise OpenAIError.wrap(err) from err
        except StoreUnavailableError as exc:
            raise OpenAIError.wrap(
                ServiceUnavailable(
                    "the proxy's store is unavailable; nothing was submitted. Retry shortly",
                    reason="store_unavailable",
                    headers={"Retry-After": "1"},
                )
            ) from exc

    return wrapped


def timing(settings: Settings, job: JobRecord) -> Timing:
    videos = settings.openai_videos
    return Timing(
        now=time.time(),
        typical_seconds=videos.typical_seconds.get(job.pinned_slug, videos.default_typical_seconds),
        retention_seconds=settings.watcher.retention_seconds,
    )


def store_of(request: web.Request) -> Store:
    store = request.app[RUNTIME].store
    if store is None:
        raise ServiceUnavailable("the job ledger is not open yet", reason="store_unavailable")
    return store


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asks: the virtual-key identity (``None`` in pass-through), the credential, the
    caller's name (``vk:<id>`` / ``fp:<fingerprint>``)."""

    identity: Identity | None
    authorization: str
    caller: str


async def asker(request: web.Request) -> Asker:
    """The caller of a read route; 401 without a usable key."""
    access.refuse_token_in_url(request.raw_path)
    authorization = request.headers.get("Authorization")
    identity = await access.identify(request.app[RUNTIME].keyring, authorization)
    caller = access.caller_id(identity, authorization)
    if authorization is None or caller is None:
        raise Unauthorized(
            "You didn't provide an API key: send 'Authorization: Bearer <key>'.",
            reason="missing_credentials",
        )
    return Asker(identity, authorization, caller)


async def own_video(request: web.Request, who: Asker) -> JobRecord:
    """The caller's video named in the path; 404 for a video that is not theirs."""
    video_id = request.match_info["video_id"]
    if not video_id.startswith(VIDEO_PREFIX) or len(video_id) > MAX_ID_CHARS:
        raise not_found(video_id)
    job = await queued.find(store_of(request), video_id)
    if job is None or job.caller != who.caller or job.api != API or job.hidden_at is not None:
        raise not_found(video_id)
    return job


def settings_of(request: web.Request) -> Settings:
    return request.app[SETTINGS]
