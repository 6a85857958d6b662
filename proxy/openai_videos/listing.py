"""``GET /v1/videos``: the caller's own videos, OpenAI's cursor page.

``after`` is the id of the last video of the previous page, ``limit`` 1 to
``openai_videos.max_list_limit`` (20 unless given), ``order`` ``desc`` (newest first, the
default) or ``asc``. Read from the ledger alone: no upstream call per video.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from proxy.openai_videos.door import API, asker, settings_of, store_of, timing
from proxy.openai_videos.errors import invalid
from proxy.openai_videos.objects import video
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
        after = await store.job_by_ref(query["after"])
        if after is None or after.caller != who.caller or after.api != API:
            raise invalid(f"after: no video '{query['after'][:128]}' of yours.", "after")
    jobs, more = await store.api_jobs_page(who.caller, API, limit=limit, order=order, after=after)
    data = [video(job, timing(settings, job)) for job in jobs]
    return web.json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }
    )


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
