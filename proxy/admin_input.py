"""Admin input: text no store can keep, refused at the admin API's door (400, before any
handler runs), and the readers the admin handlers share (a JSON body, epoch-second times).

PostgreSQL's text columns cannot hold NUL, and neither engine can encode a lone UTF-16
surrogate (what JSON's ``"\\ud800"`` decodes to), so such a character in a path segment,
a query value or anywhere in a JSON body would otherwise reach the driver and fail there
(500). Every admin request is checked the same way, whatever its route: its decoded path,
its query, and its body if that is JSON (a body that is not JSON is the handler's to refuse).
The body is read here, so a handler asks ``request.body_exists``, never ``can_read_body``
(false once read); ``request.read()`` and ``request.json()`` give it again.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from proxy.errors import BadRequest


def storable(text: str) -> bool:
    """Whether ``text`` holds no NUL and no lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unstorable_in(value: Any) -> bool:
    if isinstance(value, str):
        return not storable(value)
    if isinstance(value, dict):
        return any(_unstorable_in(k) or _unstorable_in(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable_in(v) for v in value)
    return False


def _refused(where: str) -> BadRequest:
    return BadRequest(
        f"the {where} holds a NUL character or a lone surrogate, which no field may hold",
        reason="unstorable_text",
    )


async def refuse_unstorable(request: web.Request) -> None:
    """400 if the request's path, query or JSON body holds text no store can keep."""
    if not storable(request.path):
        raise _refused("path")
    if any(not storable(k) or not storable(v) for k, v in request.query.items()):
        raise _refused("query")
    if not request.body_exists:
        return
    raw = await request.read()  # kept by aiohttp: the handler reads the same bytes
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return
    if _unstorable_in(body):
        raise _refused("body")


async def json_body(request: web.Request) -> Any:
    """The request's JSON body, or 400 ``malformed_json``."""
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body must be JSON", reason="malformed_json") from None


def epoch_seconds(request: web.Request, name: str) -> float | None:
    """The query value ``name`` as epoch seconds, ``None`` if absent or empty, else 400."""
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be epoch seconds, got {raw!r}") from None
