"""``POST /v1/videos``: the OpenAI request, translated, run through the one submit walk.

The door reads the request (``request``), resolves the model and builds the Modellix body
(``mapping``) at the point where the Modellix door reads its body, so identify has run
first and everything after (pin, fingerprint, idempotency, validate, price, callback,
budget, admit, send, record) is the pipeline's own (``handlers.submit.walk``). The job is
recorded under the door's name (``api = "openai"``) and the video id ``video_<intent id>``,
minted before the walk: the id every replica and every restart finds it by.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDictProxy

from proxy.context import Forward, PathForm, RouteKind
from proxy.errors import ProxyError
from proxy.forwarding import public_origin, upstream_headers
from proxy.handlers.submit import walk
from proxy.openai_videos import queued
from proxy.openai_videos.door import API, DOOR, VIDEO_PREFIX, store_of, timing
from proxy.openai_videos.errors import OpenAIError, upstream_refusal
from proxy.openai_videos.mapping import Mapped
from proxy.openai_videos.objects import fresh, video
from proxy.openai_videos.request import read_request
from proxy.stages.answers import proxy_headers
from proxy.stages.body import too_large
from proxy.state import CONTEXT, RUNTIME, SETTINGS
from proxy.stores.admission_records import is_queue_id
from proxy.stores.base import Store
from proxy.stores.records import JobRecord

Build = Callable[[], Awaitable[tuple[Mapped, str]]]
"""Reads the request: its Modellix translation, and what the ledger records as asked."""


async def create_video(request: web.Request) -> web.StreamResponse:
    models = request.app[DOOR].models
    limits = request.app[RUNTIME].pipeline.limits

    async def build() -> tuple[Mapped, str]:
        asked = await read_request(request, limits)
        slug = models.slug_for(asked.model, asked.reference is not None)
        one = models.translate(asked, slug)
        return one, asked.recorded(asked.model or slug, one.seconds, one.size)

    return await submit(request, build)


async def submit(request: web.Request, build: Build) -> web.StreamResponse:
    """The request ``build`` reads, walked as a submit of this door, answered as a video."""
    app = request.app
    ctx = request[CONTEXT]
    runtime = app[RUNTIME]
    settings = app[SETTINGS]
    ctx.route = RouteKind.SUBMIT  # counted, logged and refused as a submit
    ctx.api = API
    ctx.api_ref = VIDEO_PREFIX + ctx.internal_id
    ctx.path_form = PathForm.ASYNC
    headers = upstream_headers(request, settings, keep_length=False)
    headers["Content-Type"] = "application/json"
    ctx.forward = Forward(
        query="", headers=CIMultiDictProxy(headers), origin=public_origin(request, settings)
    )
    limits = runtime.pipeline.limits
    mapped: list[Mapped] = []

    async def read() -> bytes:
        one, recorded = await build()
        body = json.dumps(one.body, ensure_ascii=False, separators=(",", ":")).encode()
        if len(body) > limits.max_bytes:
            raise too_large(limits.max_bytes)
        ctx.requested_slug = one.slug
        ctx.api_request = recorded
        mapped.append(one)
        return body

    try:
        answer = await walk(runtime, ctx, read)
    except ProxyError as err:
        refusal = OpenAIError.wrap(err, mapped[0].params if mapped else None)
        if err.instance_reason == "submit_outcome_unknown":  # the ledger keeps it as this video
            refusal.detail += f" GET /v1/videos/{ctx.api_ref} shows it."
        raise refusal from err
    return await _answer(request, answer)


async def _answer(request: web.Request, answer: web.StreamResponse) -> web.StreamResponse:
    """The pipeline's answer (the upstream's, or a replay) as OpenAI's."""
    ctx = request[CONTEXT]
    raw = (
        answer.body if isinstance(answer, web.Response) and isinstance(answer.body, bytes) else b""
    )
    extra = proxy_headers(ctx)
    if answer.headers.get("Idempotent-Replayed") == "true":
        extra["Idempotent-Replayed"] = "true"
        if ctx.task_id is None:  # a definite refusal, replayed
            raise upstream_refusal(answer.status, raw, answer.headers)
        job = await find_replayed(store_of(request), ctx.task_id)
        if job is None or job.api != API:
            raise OpenAIError.of(
                409,
                "this Idempotency-Key was first used for a submit through /api/v1; use a new key",
                param=None,
                code="idempotency_key_reused",
                reason="idempotency_mismatch",
            )
        settings = request.app[SETTINGS]
        return web.json_response(video(job, timing(settings, job)), headers=extra)
    sent = ctx.task_id is not None or answer.headers.get("X-Modellix-Proxy-Queued") == "true"
    if answer.status == 200 and sent and ctx.api_request is not None:
        body = fresh(ctx.api_ref or "", ctx.received_at, json.loads(ctx.api_request))
        return web.json_response(body, headers=extra)
    raise upstream_refusal(answer.status, raw, answer.headers)


async def find_replayed(store: Store, task_id: str) -> JobRecord | None:
    """The job an idempotent replay names: a task id, or the queue id of a queued submit."""
    if not is_queue_id(task_id):
        return await store.get_job(task_id)
    row = await store.admission_get(task_id)
    if row is None or row.job.api_ref is None:
        return None
    return await queued.find(store, row.job.api_ref)
