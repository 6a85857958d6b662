"""PostgreSQL's ``COPY (SELECT ...) TO STDOUT`` as an async iterator of bounded chunks.

The server formats the rows (CSV here); asyncpg hands each batch of ``COPY`` data to a
coroutine, which puts it on a small queue and waits while the queue is full: the consumer
(an HTTP answer waiting for its socket to drain) slows the ``COPY`` down to its own pace,
so memory stays at a few chunks whatever the rows' number. Batches are gathered into chunks
of about ``chunk_bytes``. Closing the iterator early (the client went away) closes the
connection, which ends the ``COPY`` on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence

import asyncpg

CHUNK_BYTES = 1 << 18
QUEUED_BATCHES = 8
EXPORT_TIMEOUT_SECONDS = 3600.0
"""How long one export may take in all, a slow client's pace included."""
_CLOSED = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError)


async def copy_out(
    conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
    query: str,
    args: Sequence[object],
    *,
    chunk_bytes: int = CHUNK_BYTES,
    within: float = EXPORT_TIMEOUT_SECONDS,
) -> AsyncGenerator[bytes, None]:
    """The ``COPY ... (FORMAT csv)`` output of ``query`` (``$n`` placeholders bound to
    ``args``), in chunks."""
    queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUED_BATCHES)

    async def sink(data: bytes) -> None:
        await queue.put(bytes(data))

    copy = asyncio.ensure_future(
        conn.copy_from_query(query, *args, output=sink, timeout=within, format="csv")
    )
    buffer = bytearray()
    batch: asyncio.Future[bytes] | None = None
    try:
        while True:
            batch = asyncio.ensure_future(queue.get())
            await asyncio.wait((batch, copy), return_when=asyncio.FIRST_COMPLETED)
            if batch.done():
                buffer += batch.result()
                if len(buffer) >= chunk_bytes:
                    yield bytes(buffer)
                    buffer.clear()
                continue
            batch.cancel()
            copy.result()  # the COPY's own error, if it failed
            while not queue.empty():
                buffer += queue.get_nowait()
            if buffer:
                yield bytes(buffer)
            return
    finally:
        if batch is not None:
            batch.cancel()
        stopped = not copy.done()
        if stopped:
            copy.cancel()
        with contextlib.suppress(asyncio.CancelledError, *_CLOSED):
            await copy
        if stopped:
            # Stopped mid-COPY (the client went away): the connection is closed, which ends
            # the COPY on the server for sure; reused, it could still be mid-operation in
            # asyncpg when the pool hands it out again. The pool opens a fresh one.
            conn.terminate()
