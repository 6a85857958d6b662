"""The File API: ``POST/GET /api/v1/media/files`` and ``DELETE .../{file_id}``.

Upload takes one multipart part named ``file`` (larger than ``max_upload_bytes``
answers 413); listing shows the team's files, newest first, ``limit`` at most 100.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from proxy.simulator.core import UpstreamError
from proxy.simulator.http import SIM, TEAM, ok
from proxy.simulator.state import MediaFile

MAX_LIST_LIMIT = 100


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/media/files", upload, name="media_upload")
    app.router.add_get("/api/v1/media/files", list_files, name="media_list")
    app.router.add_delete("/api/v1/media/files/{file_id}", delete, name="media_delete")


async def upload(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    team = request[TEAM]
    if not request.content_type.startswith("multipart/"):
        raise UpstreamError(400, "Invalid format: expected multipart/form-data with a 'file' part")
    reader = await request.multipart()
    limit = sim.config.max_upload_bytes
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            continue
        size = 0
        while chunk := await part.read_chunk():
            size += len(chunk)
            if size > limit:
                raise UpstreamError(
                    413, f"Payload too large: file exceeds the {limit // (1024 * 1024)} MiB limit"
                )
        filename = part.filename or "upload.bin"
        content_type = part.headers.get("Content-Type") or ""
        if not content_type or content_type == "application/octet-stream":
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        file_id = sim.new_file_id()
        now = sim.clock()
        url = f"{sim.config.file_origin}/media/{file_id}/{quote(filename)}"
        record = MediaFile(file_id, team, filename, content_type, size, now, url)
        sim.media[file_id] = record
        return ok(_json(record))
    raise UpstreamError(400, "Invalid parameters: parameter 'file' is required")


def _json(record: MediaFile) -> dict[str, object]:
    data = record.as_json()
    data["created_at"] = datetime.fromtimestamp(record.created_at, UTC).isoformat()
    return data


async def list_files(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    team = request[TEAM]
    raw = request.query.get("limit", str(MAX_LIST_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise UpstreamError(
            400, f"Invalid format: parameter 'limit' must be an integer, got {raw!r}"
        ) from None
    if limit < 1:
        raise UpstreamError(
            400, f"Value out of range: parameter 'limit' must be at least 1, got {limit}"
        )
    limit = min(limit, MAX_LIST_LIMIT)
    files = sorted(
        (f for f in sim.media.values() if f.team == team), key=lambda f: f.created_at, reverse=True
    )
    return ok({"files": [_json(f) for f in files[:limit]], "total": len(files), "limit": limit})


async def delete(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    team = request[TEAM]
    file_id = request.match_info["file_id"]
    record = sim.media.get(file_id)
    if record is None or record.team != team:
        raise UpstreamError(404, f"File not found: {file_id}")
    del sim.media[file_id]
    return ok({"file_id": file_id, "deleted": True})
