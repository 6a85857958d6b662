"""``POST /v1/videos/{video_id}/remix``: a completed video remade from a new prompt.

OpenAI's remix takes the source video and a prompt. Over Modellix it is a video-to-video
submit: the source's family (its pinned slug without the ``-t2v``/``-i2v``/... suffix, e.g.
``bytedance/seedance-2.0``) names the v2v model that remakes it (the catalog's own
``<family>-v2v`` models, merged under ``openai_videos.remix_models``), the source's result
URL goes into that model's video field and the new prompt with it. The source's ``seconds``
and ``size`` are kept where the v2v model offers them, else the model's defaults apply (for
a model whose duration 0 keeps the input's length, the video shows the source's). The
submit then walks the one pipeline like a create (validate, price, budget, idempotency,
admission, ledger, watcher, webhooks); the new video names its source in
``remixed_from_video_id``.

A source that is not completed, whose file has expired, or whose family has no v2v model
is refused with a 400 before any cost.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from proxy.catalog.loader import Catalog
from proxy.catalog.spec import ModelSpec
from proxy.catalog.validation import parse_body
from proxy.config import OpenAIVideosSettings
from proxy.handlers.submit import read_body
from proxy.openai_videos.content import pick
from proxy.openai_videos.create import submit
from proxy.openai_videos.door import DOOR, asker, own_video, settings_of
from proxy.openai_videos.errors import OpenAIError, invalid
from proxy.openai_videos.mapping import Mapped, VideoModels
from proxy.openai_videos.objects import asked, status_of
from proxy.openai_videos.request import VideoRequest, read_prompt
from proxy.state import RUNTIME
from proxy.stores.records import JobRecord, JobStatus

_KIND = re.compile(r"-(t2v|i2v|v2v|fl2v|r2v)$")
_FIELDS = frozenset({"prompt"})


def family_of(slug: str) -> str:
    """``bytedance/seedance-2.0-fast-t2v`` → ``bytedance/seedance-2.0-fast``."""
    return _KIND.sub("", slug)


def remix_models(settings: OpenAIVideosSettings, catalog: Catalog) -> dict[str, str]:
    """Family → v2v slug: the catalog's ``<family>-v2v`` models, then the operator's map (an
    empty target removes a family)."""
    found = {slug[: -len("-v2v")]: slug for slug in catalog.slugs() if slug.endswith("-v2v")}
    found.update(settings.remix_models)
    return {family: slug for family, slug in found.items() if slug}


def video_field(spec: ModelSpec | None) -> tuple[str, bool] | None:
    """The model's video input field, and whether it takes a list."""
    if spec is None:
        return None
    return next(((m.field, m.many) for m in spec.media if m.media == "video"), None)


async def remix_video(request: web.Request) -> web.StreamResponse:
    who = await asker(request)
    source = await own_video(request, who)
    runtime = request.app[RUNTIME]
    door = request.app[DOOR]
    raw = await read_body(request, runtime.pipeline.limits)
    prompt = _prompt(parse_body(raw))
    url = _source_url(source, settings_of(request).watcher.retention_seconds)
    target = door.remixes.get(family_of(source.pinned_slug))
    if target is None:
        raise OpenAIError.of(
            400,
            f"Remix is not available for {source.pinned_slug}: no video-to-video model is "
            f"mapped for its family {family_of(source.pinned_slug)} (openai_videos."
            "remix_models). Create a new video instead.",
            param="video_id",
            code="unsupported_operation",
            reason="remix_unsupported",
        )

    async def build() -> tuple[Mapped, str]:
        one = remade(door.models, runtime.catalog.get(target), target, prompt, source, url)
        recorded = VideoRequest(prompt).recorded(
            target, one.seconds, one.size, remixed_from=source.api_ref
        )
        return one, recorded

    return await submit(request, build)


def remade(
    models: VideoModels,
    spec: ModelSpec | None,
    slug: str,
    prompt: str,
    source: JobRecord,
    url: str,
) -> Mapped:
    """The v2v body: the new prompt, the source's video, its seconds and size where the
    model offers them."""
    field = video_field(spec)
    if field is None:
        raise invalid(f"Remix: {slug} takes no video input known to this proxy.", "video_id")
    before = asked(source)
    one = _fitting(models, slug, prompt, _given(before.get("seconds")), _given(before.get("size")))
    name, many = field
    body = {**one.body, name: [url] if many else url}
    shown = one.seconds
    if spec is not None and spec.billing.zero_duration_means_input and shown == "0":
        shown = str(before.get("seconds") or "auto")  # the model keeps the input's length
    return Mapped(one.slug, body, shown, one.size, {**one.params, name: "video_id"})


def _fitting(
    models: VideoModels, slug: str, prompt: str, seconds: str | None, size: str | None
) -> Mapped:
    """The translation keeping as much of the source's seconds and size as ``slug`` takes."""
    tries = [(seconds, size), (None, size), (seconds, None)]
    for s, z in tries:
        try:
            return models.translate(VideoRequest(prompt, slug, s, z), slug)
        except OpenAIError:
            continue
    return models.translate(VideoRequest(prompt, slug), slug)


def _given(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != "auto" else None


def _prompt(fields: Mapping[str, Any]) -> str:
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise invalid(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    return read_prompt(fields)


def _source_url(source: JobRecord, retention_seconds: float) -> str:
    """The source video's result URL; 400 unless it is completed and its file still kept."""
    if source.status is not JobStatus.SUCCESS:
        raise invalid(
            f"Video {source.api_ref} cannot be remixed: only a completed video can, and its "
            f"status is {status_of(source)}.",
            "video_id",
            "video_not_completed",
        )
    url = pick(source, "video")
    done_at = source.terminal_at or source.submitted_at
    if url is None or time.time() > done_at + retention_seconds:
        raise invalid(
            f"Video {source.api_ref} cannot be remixed: its file is no longer kept upstream.",
            "video_id",
            "video_expired",
        )
    return url
