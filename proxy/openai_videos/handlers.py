"""``GET``/``DELETE /v1/videos/{video_id}``.

A retrieve of a video whose task the upstream still knows polls it through the poll path
(``handlers.poll.forward_poll``: retried freely, observed for the ledger, a terminal answer
served from the ledger's cache), so what the client sees is the ledger's record updated by
that very poll; if the upstream cannot be reached, the ledger's record as it stands. A video
still in progress carries ``openai-poll-after-ms`` (``watcher.base_delay_seconds``), which
the OpenAI SDKs' ``create_and_poll`` waits between retrieves.
A delete removes the video from its owner's views: the upstream has no cancel, so a job
still running runs on and is billed, and the ledger keeps its record for finance; a video
the admission queue still holds is cancelled instead (``queued``), and nothing is bought.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from aiohttp import web

from proxy.errors import ProxyError
from proxy.handlers.poll import forward_poll
from proxy.jsoncodec import loads
from proxy.openai_videos import queued
from proxy.openai_videos.door import asker, own_video, settings_of, store_of, timing
from proxy.openai_videos.objects import video
from proxy.routing import API_PREFIX
from proxy.stores.records import JobStatus

POLL_AFTER = "openai-poll-after-ms"


def poll_target(task_id: str) -> str:
    return f"{API_PREFIX}tasks/{quote(task_id, safe='/:@+=')}"


async def retrieve_video(request: web.Request) -> web.StreamResponse:
    who = await asker(request)
    job = await own_video(request, who)
    expires_at: float | None = None
    polled = job.status not in (JobStatus.UNKNOWN, JobStatus.EXPIRED) and not queued.is_queued(job)
    if polled:
        try:
            reply = await forward_poll(
                request, job.task_id, poll_target(job.task_id), who.identity, who.authorization
            )
        except ProxyError:
            reply = None  # the upstream is out of reach: the ledger's record as it stands
        if reply is not None and reply.status == 200 and isinstance(reply.body, bytes):
            expires_at = result_expiry(reply.body)
            job = await store_of(request).get_job(job.task_id) or job
    settings = settings_of(request)
    headers = {}
    if not job.terminal and job.status is not JobStatus.UNKNOWN:  # the SDKs' poll helpers wait this
        headers[POLL_AFTER] = str(round(settings.watcher.base_delay_seconds * 1000))
    body = video(job, timing(settings, job), expires_at=expires_at)
    return web.json_response(body, headers=headers)


def result_expiry(body: bytes) -> float | None:
    """The task answer's ``result_expires_at`` (epoch milliseconds) in seconds, if any."""
    try:
        doc = loads(body)
    except ValueError:
        return None
    data = doc.get("data") if isinstance(doc, dict) else None
    value = data.get("result_expires_at") if isinstance(data, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value) / 1000.0
    return None


async def delete_video(request: web.Request) -> web.StreamResponse:
    who = await asker(request)
    job = await own_video(request, who)
    store = store_of(request)
    now = time.time()
    if not queued.is_queued(job) or not await queued.cancel(store, job, now):
        await store.hide_api_job(job.api_ref or "", who.caller, now)  # sent: hide it
    return web.json_response({"id": job.api_ref, "object": "video.deleted", "deleted": True})
