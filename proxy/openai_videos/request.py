"""``POST /v1/videos`` as sent: JSON, multipart or a URL-encoded form, read into one
``VideoRequest``.

Fields (OpenAI's): ``prompt`` (required), ``model``, ``seconds``, ``size`` and
``input_reference``: in JSON an object ``{"image_url": <URL or data URL>}`` or the URL
itself; in multipart an uploaded image (sent on as a data URL) or the URL as text. An
``input_reference.file_id`` (OpenAI's Files API) has no Modellix counterpart: refused.
Any other field is refused, as OpenAI refuses an argument it does not know. The body is
read under the submit body limits (413 past them), every part of a multipart form counted;
a malformed form, text that is not UTF-8 or a lone surrogate is 400.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, web

from proxy.catalog.validation import parse_body
from proxy.errors import PayloadTooLarge
from proxy.handlers.submit import read_body
from proxy.openai_videos.errors import invalid
from proxy.stages.body import BodyLimits, too_large

FIELDS = frozenset({"model", "prompt", "seconds", "size", "input_reference"})
MAX_PROMPT_CHARS = 32_000
MAX_TEXT_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class VideoRequest:
    """What the client asked for, in OpenAI's terms (``reference``: a URL or data URL)."""

    prompt: str
    model: str | None = None
    seconds: str | None = None
    size: str | None = None
    reference: str | None = None

    def recorded(
        self, model: str, seconds: str, size: str, *, remixed_from: str | None = None
    ) -> str:
        """The request as the ledger keeps it (``api_request``): the reference left out,
        ``seconds`` and ``size`` as the video shows them (the model's defaults filled in),
        and the source video of a remix."""
        fields: dict[str, Any] = {
            "model": model,
            "prompt": self.prompt,
            "seconds": seconds,
            "size": size,
            "has_reference": self.reference is not None,
        }
        if remixed_from is not None:
            fields["remixed_from_video_id"] = remixed_from
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


async def read_request(request: web.Request, limits: BodyLimits) -> VideoRequest:
    """The create request, JSON or multipart, refused (400/413) when malformed or too large."""
    if request.content_type.startswith("multipart/"):
        try:
            fields = await _multipart(request, limits)
        except ValueError as exc:  # aiohttp's: no boundary, a part cut short
            raise invalid(f"The multipart body is malformed: {exc}.", None) from exc
    elif request.content_type == "application/x-www-form-urlencoded":
        raw = await read_body(request, limits)
        try:
            fields = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict"))
        except UnicodeDecodeError as exc:
            raise invalid("The form body is not UTF-8.", None) from exc
    else:
        raw = await read_body(request, limits)
        fields = parse_body(raw)  # 400 malformed_json unless a JSON object
    return from_fields(fields)


def from_fields(fields: dict[str, Any]) -> VideoRequest:
    """The ``VideoRequest`` the fields describe, or a 400 naming the field."""
    unknown = sorted(set(fields) - FIELDS)
    if unknown:
        raise invalid(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    for name, value in fields.items():
        if not encodable(value):
            raise invalid(f"{name} holds a lone surrogate: it is not UTF-8 text.", name)
    prompt = read_prompt(fields)
    model = _text(fields, "model")
    seconds = fields.get("seconds")
    if isinstance(seconds, int) and not isinstance(seconds, bool):
        seconds = str(seconds)
    if seconds is not None and not isinstance(seconds, str):
        raise invalid("seconds must be a string such as '8'.", "seconds")
    return VideoRequest(
        prompt=prompt,
        model=model,
        seconds=seconds,
        size=_text(fields, "size"),
        reference=_reference(fields.get("input_reference")),
    )


def read_prompt(fields: Mapping[str, Any]) -> str:
    """The request's ``prompt``: a non-empty string of UTF-8 text within the length, else 400."""
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid(
            "prompt is required: a non-empty string.", "prompt", "missing_required_parameter"
        )
    if len(prompt) > MAX_PROMPT_CHARS:
        raise invalid(f"prompt is longer than {MAX_PROMPT_CHARS} characters.", "prompt")
    if not encodable(prompt):
        raise invalid("prompt holds a lone surrogate: it is not UTF-8 text.", "prompt")
    return prompt


def encodable(value: Any) -> bool:
    """Whether every string in ``value`` is UTF-8 encodable (JSON's ``"\\ud800"`` is not)."""
    if isinstance(value, dict):
        return all(encodable(k) and encodable(v) for k, v in value.items())
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


def _text(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 256:
        raise invalid(f"{name} must be a non-empty string.", name)
    return value


def _reference(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        if "file_id" in value:
            raise invalid(
                "input_reference.file_id is not supported by this proxy: send the image "
                "itself (multipart), its URL or a data URL as input_reference.image_url.",
                "input_reference.file_id",
                "unsupported_parameter",
            )
        extra = sorted(set(value) - {"image_url"})
        if extra:
            raise invalid(f"Unrecognized argument: input_reference.{extra[0]}", "input_reference")
        value = value.get("image_url")
    if not isinstance(value, str) or not value.startswith(("https://", "http://", "data:")):
        raise invalid(
            "input_reference must be an uploaded image, an image URL or a data URL.",
            "input_reference",
        )
    return value


async def _multipart(request: web.Request, limits: BodyLimits) -> dict[str, Any]:
    """The multipart form's fields; an uploaded file becomes a data URL."""
    if request.content_length is not None and request.content_length > limits.max_bytes:
        raise too_large(limits.max_bytes)
    reader = await request.multipart()
    fields: dict[str, Any] = {}
    budget = limits.max_bytes
    while True:
        part = await reader.next()
        if part is None:
            return fields
        if not isinstance(part, BodyPartReader) or not part.name:
            raise invalid("Nested or unnamed multipart parts are not accepted.", None)
        if part.name not in FIELDS:  # refused before it is read: no field piles up unbounded
            raise invalid(f"Unrecognized request argument supplied: {part.name}", part.name)
        limit = budget if part.filename else min(budget, MAX_TEXT_FIELD_BYTES)
        data = await _read_part(part, limit)
        budget -= len(data)
        if part.filename is not None:
            kind = part.headers.get("Content-Type", "application/octet-stream").split(";")[0]
            encoded = base64.b64encode(data).decode("ascii")
            fields[part.name] = f"data:{kind.strip()};base64,{encoded}"
        else:
            try:
                fields[part.name] = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise invalid(f"{part.name} is not UTF-8 text.", part.name) from exc


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await part.read_chunk(256 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the multipart field '{part.name}' is larger than {limit} bytes",
                details={"limit_bytes": limit},
            )
        chunks.append(chunk)
