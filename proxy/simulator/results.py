"""The result files: ``GET /sim/{task_id}.{ext}`` (and ``/sim/{task_id}-{n}.{ext}`` for images).

A finished task's ``result.resources[].url`` is ``{file_origin}/sim/...``; with
``file_origin`` set to the simulator's own origin, those URLs answer here with bytes made
from the task id (the same bytes on every request, different for every task): an MP4
``ftyp`` box and then filler for a video, so a client can compare what it downloaded
through a proxy with what the URL serves. Unknown, unfinished or expired tasks: 404.
"""

from __future__ import annotations

import hashlib
import re

from aiohttp import web

from proxy.simulator.core import UpstreamError
from proxy.simulator.http import SIM

_NAME = re.compile(r"^(?P<task>.+?)(?:-(?P<n>\d+))?\.(?P<ext>mp4|jpg|png|webp)$")
_TYPES = {"mp4": "video/mp4", "jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
FILE_BYTES = 64 * 1024


def add_routes(app: web.Application) -> None:
    app.router.add_get("/sim/{name:.+}", result_file, name="result_file")


def file_bytes(task_id: str, index: int = 0) -> bytes:
    """The content of a task's ``index``-th result file."""
    seed = hashlib.sha256(f"{task_id}:{index}".encode()).digest()
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    body = (seed * (FILE_BYTES // len(seed) + 1))[: FILE_BYTES - len(head)]
    return head + body


async def result_file(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    match = _NAME.match(request.match_info["name"])
    if match is None:
        raise web.HTTPNotFound(text="no such file")
    try:
        task = sim.lookup(match["task"])
    except UpstreamError:
        raise web.HTTPNotFound(text="no such file") from None
    if task.status_at(sim.clock()) != "success":
        raise web.HTTPNotFound(text="no such file")
    index = int(match["n"] or 0)
    return web.Response(body=file_bytes(task.task_id, index), content_type=_TYPES[match["ext"]])
