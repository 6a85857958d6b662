"""``GET /v1/videos``: the caller's own videos, OpenAI's cursor page.

``after`` is the id of the last video of the previous page, ``limit`` 1 to
``openai_videos.max_list_limit`` (20 unless given), ``order`` ``desc`` (newest first, the
default) or ``asc``. A page merges the ledger's videos with those the admission queue still
holds (``queued``; or ``failed`` if refused or expired there), in one order by creation time
and id: a video keeps its place and its id when it is sent, and is listed once. The queue
is read before the ledger, so a video sent between the two reads is found in the second.
No upstream call per video.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from proxy.openai_videos import queued
from proxy.openai_videos.door import API, asker, settings_of, store_of, timing
from proxy.openai_videos.errors import invalid
from proxy.openai_videos.objects import video
from proxy.stores.admission_records import row_as_job
from proxy.stores.records import JobRecord

DEFAULT_LIMIT = 20


async def list_videos(request: web.Request) -> web.StreamResponse:
    who = await asker(request)
    settings = settings_of(request)
    query = request.query
    unknown = sorted(set(query) - {"after", "limit", "order"})
    if unknown:
        raise invalid(f"Unrecognized query parameter: {unknown[0]}", unknown[0])
    limit = _limit(query.get("limit"), settings.openai_videos.max_list_limit)
    order = _order(query.get("order"))
    store = store_of(request)
    after: JobRecord | None = None
    if "after" in query:
        after = await queued.find(store, query["after"])
        if after is None or after.caller != who.caller or after.api != API:
            raise invalid(f"after: no video '{query['after'][:128]}' of yours.", "after")
    cursor = (after.submitted_at, after.api_ref or "") if after is not None else None
    held = await store.api_queued_page(who.caller, API, limit=limit, order=order, after=cursor)
    jobs, more = await store.api_jobs_page(who.caller, API, limit=limit, order=order, after=after)
    page, more = merged(jobs, [row_as_job(row) for row in held], limit, order, more)
    data = [video(job, timing(settings, job)) for job in page]
    return web.json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }
    )


def merged(
    jobs: list[JobRecord],
    held: list[JobRecord],
    limit: int,
    order: Literal["asc", "desc"],
    more: bool,
) -> tuple[list[JobRecord], bool]:
    """One page of the ledger's ``jobs`` and the queue's ``held`` (each already past the
    cursor, in ``order``); a video in both is the ledger's. Whether more follow."""
    sent = {job.api_ref for job in jobs}
    every = jobs + [job for job in held if job.api_ref not in sent]
    every.sort(key=lambda job: (job.submitted_at, job.api_ref or ""), reverse=order == "desc")
    return every[:limit], more or len(every) > limit


def _limit(raw: str | None, most: int) -> int:
    if raw is None:
        return min(DEFAULT_LIMIT, most)
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise invalid(f"limit must be a whole number from 1 to {most}.", "limit")
    return int(raw)


def _order(raw: str | None) -> Literal["asc", "desc"]:
    if raw is None or raw == "desc":
        return "desc"
    if raw == "asc":
        return "asc"
    raise invalid("order must be 'asc' or 'desc'.", "order")
