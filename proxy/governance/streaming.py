"""Rows to bytes, a page at a time, and those bytes to an HTTP client or a file.

A finance read is a sequence of pages (``AsyncIterable`` of row batches, each read off the
event loop by the store); each page becomes one chunk (CSV lines, JSON array elements or
NDJSON lines, encoded by ``csv`` and orjson on a worker thread), written before the next
page is read. Memory stays at one page whatever the ledger's size, and the event loop
serves other requests meanwhile. The first chunk waits for the first page, so a store that
cannot answer is still an ordinary error answer; a failure later cuts the chunked body
short (the client sees an incomplete transfer, never a truncated file that looks whole).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import IO, Any, TypeVar

import orjson
from aiohttp import web

log = logging.getLogger(__name__)

T = TypeVar("T")
Values = Sequence[Any]
Doc = Mapping[str, Any]

CSV = "text/csv"
JSON = "application/json"
NDJSON = "application/x-ndjson"


def _csv_lines(rows: Iterable[Values]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)  # None is written as ""
    return out.getvalue().encode()


def csv_header(columns: Sequence[str]) -> bytes:
    """The CSV line naming ``columns``."""
    return _csv_lines([columns])


def _same(row: Any) -> Any:
    return row


async def _encoded(
    pages: AsyncIterable[Sequence[T]], encode: Callable[[Sequence[T]], bytes]
) -> AsyncIterator[bytes]:
    """Each page encoded on a worker thread: the event loop only hands the bytes on."""
    async for page in pages:
        if page:
            yield await asyncio.to_thread(encode, page)


async def csv_chunks(
    header: Sequence[str],
    pages: AsyncIterable[Sequence[T]],
    values: Callable[[T], Values] = _same,
) -> AsyncIterator[bytes]:
    """The header line and each page's rows (``values(row)`` in header order) as CSV lines."""
    head: bytes | None = _csv_lines([header])
    async for chunk in _encoded(pages, lambda page: _csv_lines(map(values, page))):
        if head is not None:
            chunk, head = head + chunk, None
        yield chunk
    if head is not None:
        yield head


def _dumps(doc: Any) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)


async def json_chunks(
    head: Doc,
    key: str,
    pages: AsyncIterable[Sequence[T]],
    tail: Callable[[], Doc] | None = None,
    doc: Callable[[T], Doc] = _same,
) -> AsyncIterator[bytes]:
    """One JSON object: ``head``'s members, ``key`` holding every row (``doc(row)``), then
    ``tail()``'s members (computed once the rows are written: totals)."""
    opening = _dumps(dict(head))[:-1] + (b"," if head else b"") + _dumps(key) + b":["
    first = True
    async for rows in _encoded(pages, lambda page: b",\n".join(_dumps(doc(r)) for r in page)):
        chunk = (b"\n" if first else b",\n") + rows
        if first:
            chunk, first = opening + chunk, False
        yield chunk
    closing = b"\n]"
    extra = dict(tail()) if tail is not None else {}
    if extra:
        closing += b"," + _dumps(extra)[1:-1]
    yield (opening if first else b"") + closing + b"}\n"


async def ndjson_chunks(
    pages: AsyncIterable[Sequence[T]], doc: Callable[[T], Doc] = _same
) -> AsyncIterator[bytes]:
    """One JSON object per line."""
    async for chunk in _encoded(pages, lambda page: b"".join(_dumps(doc(r)) + b"\n" for r in page)):
        yield chunk


async def respond(
    request: web.Request,
    content_type: str,
    chunks: AsyncIterator[bytes],
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Send ``chunks`` as a chunked answer, one write per chunk (each waits for the socket to
    drain below its high-water mark, so a slow client slows the reads instead of filling
    memory). A client that goes away ends the read quietly."""
    try:
        first = await anext(chunks, b"")
        response = web.StreamResponse(headers={**(headers or {}), "Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
            await response.write_eof()
        except ConnectionError:  # aiohttp's ClientConnectionResetError is one
            log.info("finance read: the client went away mid-answer (%s)", request.path)
        return response
    finally:
        await _close(chunks)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


async def to_file(chunks: AsyncIterator[bytes], out: IO[bytes]) -> None:
    """Write ``chunks`` to a binary file (the CLI's stdout), flushing each."""
    try:
        async for chunk in chunks:
            out.write(chunk)
            out.flush()
    finally:
        await _close(chunks)
