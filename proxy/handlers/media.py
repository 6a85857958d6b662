"""The upstream's File API (``/api/v1/media/files``) for proxy keys: each key sees its own files.

Every proxy key's requests go upstream with the one shared upstream key, so upstream all
uploads belong to one team. The proxy keeps which proxy key uploaded each file
(``MediaFileStore``) and, for a request carrying a proxy key:

- ``POST`` (upload): forwarded; when the upstream answers with a ``file_id``, the file is
  recorded for the key (and its team). A failed store write does not lose the upstream's
  answer: the client gets it, the failure is logged, and the file is simply not listed for
  (nor deletable by) the key.
- ``GET`` (list): the upstream's list, filtered to the key's own files, in the upstream's
  envelope (``files``, ``total`` counting the key's files, ``limit``). The upstream is asked
  for its largest page so that the client's ``limit`` applies to the key's own files.
- ``DELETE .../{file_id}``: refused with 404 in the upstream's envelope, without any upstream
  call, unless this very key uploaded the file (the same key owns it, not its team, as for
  tasks); after the upstream's 200 the record is dropped.

Requests with the caller's own Modellix key (pass-through and mixed modes) are forwarded
unchanged: the upstream itself keeps that key's team apart.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from aiohttp import web

from proxy.errors import NotFound, UpstreamUnavailable
from proxy.forwarding import upstream_headers
from proxy.governance import access
from proxy.governance.keys import Identity
from proxy.handlers.passthrough import CHUNK, handle_passthrough, too_large
from proxy.routing import MEDIA_FILE_NAME
from proxy.state import CONTEXT, ROUTE, RUNTIME, SETTINGS, UPSTREAM
from proxy.stores.base import MediaFileStore, StoreError
from proxy.upstream.client import Reply, TransportFailure, reply_headers
from proxy.upstream.failures import transport_error

log = structlog.get_logger("proxy.media")
MAX_LIST_LIMIT = 100  # the upstream's largest page of files


async def handle_media(request: web.Request) -> web.StreamResponse:
    """A File API request: kept to the proxy key's own files, else forwarded as is."""
    runtime = request.app[RUNTIME]
    identity = await access.identify(runtime.keyring, request.headers.get("Authorization"))
    store = runtime.store
    if identity is None or store is None:
        return await handle_passthrough(request)
    owner = identity.caller.virtual_key_id or identity.caller.identity
    route = request[ROUTE]
    if route.name == MEDIA_FILE_NAME:
        return await _delete(request, store, identity, owner, route.file_id or "")
    if request.method == "POST":
        return await _upload(request, store, identity, owner)
    return await _list(request, store, identity, owner)


async def _upload(
    request: web.Request, store: MediaFileStore, identity: Identity, owner: str
) -> web.Response:
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    seen = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        seen += len(chunk)
        if seen > limit:
            raise too_large(limit)
        chunks.append(chunk)
    reply = await _forward(request, identity, request[ROUTE].target, b"".join(chunks))
    file_id = _uploaded_id(reply)
    if file_id is not None:
        try:
            await store.record_media_file(file_id, owner, identity.caller.team, time.time())
        except StoreError as failed:  # the client still gets its file id
            log.error("media.record_failed", file_id=file_id, key_id=owner, error=str(failed))
    return _answer(reply, reply.body)


async def _list(
    request: web.Request, store: MediaFileStore, identity: Identity, owner: str
) -> web.Response:
    query, wanted = _widened(request[ROUTE].query)
    path = request[ROUTE].path
    reply = await _forward(request, identity, f"{path}?{query}" if query else path, None)
    if reply.status != 200:
        return _answer(reply, reply.body)
    doc = _json(reply.body)
    data = doc.get("data") if isinstance(doc, dict) else None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(files, list):
        raise UpstreamUnavailable("the upstream's file list could not be read")
    ids = [f["file_id"] for f in files if isinstance(f, dict) and isinstance(f.get("file_id"), str)]
    own = await store.media_files_of(owner, ids)
    kept = [f for f in files if isinstance(f, dict) and f.get("file_id") in own]
    data["files"] = kept[:wanted] if wanted is not None else kept
    data["total"] = len(kept)
    if wanted is not None:
        data["limit"] = wanted
    return _answer(reply, json.dumps(doc).encode())


async def _delete(
    request: web.Request, store: MediaFileStore, identity: Identity, owner: str, file_id: str
) -> web.Response:
    if await store.media_file_owner(file_id) != owner:
        raise NotFound(f"file {file_id!r} is not one of this key's files", reason="file_not_owned")
    reply = await _forward(request, identity, request[ROUTE].target, None)
    if reply.status == 200:
        await store.forget_media_file(file_id)
    return _answer(reply, reply.body)


def _widened(query: str) -> tuple[str, int | None]:
    """The query with the largest ``limit``, and the client's own limit (``None`` if it sent
    none, or one the upstream is left to refuse)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    limits = [v for k, v in pairs if k == "limit"]
    if len(limits) != 1 or not limits[0].isdigit() or int(limits[0]) < 1:
        return query, None
    wanted = min(int(limits[0]), MAX_LIST_LIMIT)
    widened = [(k, str(MAX_LIST_LIMIT) if k == "limit" else v) for k, v in pairs]
    return urlencode(widened), wanted


def _uploaded_id(reply: Reply) -> str | None:
    """The ``file_id`` of a successful upload answer, if it has one."""
    if reply.status != 200:
        return None
    doc = _json(reply.body)
    data = doc.get("data") if isinstance(doc, dict) else None
    file_id = data.get("file_id") if isinstance(data, dict) else None
    return file_id if isinstance(file_id, str) and file_id else None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


async def _forward(
    request: web.Request, identity: Identity, target: str, body: bytes | None
) -> Reply:
    """One upstream exchange with the upstream key, read whole (answers here are small)."""
    ctx = request[CONTEXT]
    headers = upstream_headers(request, request.app[SETTINGS], keep_length=False)
    access.swap(headers, identity)
    ctx.upstream_attempts = 1
    try:
        reply = await request.app[UPSTREAM].fetch(
            request.method, target, headers, body, "passthrough"
        )
    except TransportFailure as failure:
        raise transport_error(failure, paid=False) from failure
    ctx.upstream_seconds = reply.seconds
    return reply


def _answer(reply: Reply, body: bytes) -> web.Response:
    return web.Response(status=reply.status, body=body, headers=reply_headers(reply.headers))
