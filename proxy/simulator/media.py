"""The File API: ``POST/GET /api/v1/media/files`` and ``DELETE .../{file_id}``.

- Upload: ``multipart/form-data`` with one part named ``file``: a PNG, JPEG or WebP
  image, recognised from its bytes (the declared type and name are not trusted), of
  1 byte to ``max_upload_bytes`` (16 MiB; larger answers 413). A team keeps at most
  ``max_files_per_team`` files (10; one more answers 400 until one is deleted or
  expires) and uploads at most ``max_concurrent_uploads`` at once (2; one more answers
  429 at once, before its body is read). Files expire ``file_retention_seconds`` (7
  days) after upload.
- List: the team's live files, newest first; ``limit`` at most 100.
- Delete: ``{"file_id", "deleted": true}``; 404 for an unknown, expired or other
  team's file. Deleting frees the file's place in the quota.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from proxy.simulator.core import Simulator, UpstreamError
from proxy.simulator.http import SIM, TEAM, ok
from proxy.simulator.state import MediaFile

MAX_LIST_LIMIT = 100
_MIB = 1024 * 1024
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/media/files", upload, name="media_upload")
    app.router.add_get("/api/v1/media/files", list_files, name="media_list")
    app.router.add_delete("/api/v1/media/files/{file_id}", delete, name="media_delete")


def sniff(head: bytes) -> str | None:
    """The image type of a file from its first bytes: PNG, JPEG or WebP; else ``None``."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def live_files(sim: Simulator, team: str) -> list[MediaFile]:
    """``team``'s files that have not expired, newest first."""
    now = sim.clock()
    retention = sim.config.file_retention_seconds
    files = [f for f in sim.media.values() if f.team == team and now < f.created_at + retention]
    return sorted(files, key=lambda f: f.created_at, reverse=True)


async def upload(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    team = request[TEAM]
    config = sim.config
    if config.max_concurrent_uploads and (
        sim.uploads_in_flight[team] >= config.max_concurrent_uploads
    ):
        sim.counters.upload_refusals += 1
        raise UpstreamError(
            429,
            f"Rate limit exceeded: at most {config.max_concurrent_uploads} concurrent uploads "
            "per team",
        )
    _check_quota(sim, team)
    if not request.content_type.startswith("multipart/"):
        raise UpstreamError(400, "Invalid format: expected multipart/form-data with a 'file' part")
    sim.uploads_in_flight[team] += 1
    sim.touch()
    try:
        return await _receive(request, sim, team)
    finally:
        sim.uploads_in_flight[team] -= 1
        sim.touch()


def _check_quota(sim: Simulator, team: str) -> None:
    most = sim.config.max_files_per_team
    if most and len(live_files(sim, team)) >= most:
        raise UpstreamError(
            400, f"Invalid parameters: file limit of {most} per team reached; delete a file first"
        )


async def _receive(request: web.Request, sim: Simulator, team: str) -> web.StreamResponse:
    reader = await request.multipart()
    limit = sim.config.max_upload_bytes
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            continue
        head, size = b"", 0
        while chunk := await part.read_chunk():
            if len(head) < 16:
                head += chunk[: 16 - len(head)]
            size += len(chunk)
            if size > limit:
                raise UpstreamError(
                    413, f"Payload too large: file exceeds the {limit / _MIB:g} MiB limit"
                )
        if size == 0:
            raise UpstreamError(400, "Invalid parameters: parameter 'file' is empty")
        content_type = sniff(head)
        if content_type is None:
            raise UpstreamError(
                400, "Invalid format: unsupported file type; PNG, JPEG or WebP expected"
            )
        _check_quota(sim, team)  # again: another upload may have finished meanwhile
        file_id = sim.new_file_id()
        filename = part.filename or f"upload.{_EXTENSIONS[content_type]}"
        url = f"{sim.config.file_origin}/media/{file_id}/{quote(filename)}"
        record = MediaFile(file_id, team, filename, content_type, size, sim.clock(), url)
        sim.media[file_id] = record
        sim.touch()
        return ok(_json(record, sim.config.file_retention_seconds))
    raise UpstreamError(400, "Invalid parameters: parameter 'file' is required")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _json(record: MediaFile, retention: float) -> dict[str, object]:
    data = record.as_json()
    data["created_at"] = _iso(record.created_at)
    data["expires_at"] = _iso(record.created_at + retention)
    return data


async def list_files(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    raw = request.query.get("limit", str(MAX_LIST_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise UpstreamError(
            400, f"Invalid format: parameter 'limit' must be an integer, got {raw[:40]!r}"
        ) from None
    if limit < 1:
        raise UpstreamError(
            400, f"Value out of range: parameter 'limit' must be at least 1, got {limit}"
        )
    limit = min(limit, MAX_LIST_LIMIT)
    files = live_files(sim, request[TEAM])
    retention = sim.config.file_retention_seconds
    return ok(
        {"files": [_json(f, retention) for f in files[:limit]], "total": len(files), "limit": limit}
    )


async def delete(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    file_id = request.match_info["file_id"]
    if file_id not in {f.file_id for f in live_files(sim, request[TEAM])}:
        raise UpstreamError(404, f"File not found: {file_id}")
    del sim.media[file_id]
    sim.touch()
    return ok({"file_id": file_id, "deleted": True})
