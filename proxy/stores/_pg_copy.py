"""PostgreSQL's ``COPY (SELECT ...) TO STDOUT`` as an async iterator of bounded chunks.

The server formats the rows (CSV here); asyncpg hands each batch of ``COPY`` data to a
coroutine, which puts it on a small queue and waits while the queue is full: the consumer
(an HTTP answer waiting for its socket to drain) slows the ``COPY`` down to its own pace,
so memory stays at a few chunks whatever the rows' number. Batches are gathered into chunks
of about ``chunk_bytes``.

Closing the iterator early (the client went away) stops the ``COPY`` on the server with
``pg_cancel_backend`` sent from another connection, while the batches still on their way are
read and dropped; the ``COPY`` then ends in the protocol's own way (an error answer and
ready-for-query), and its connection is closed rather than reused. The ``COPY``'s task is
not cancelled: asyncpg answers a cancelled ``COPY`` by asking the server to cancel it and
reading on, and a second batch read after that finds no waiter and fails inside asyncpg's
protocol (a fatal transport error the loop logs with a traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

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
    cancel: Callable[[int], Awaitable[None]],
    chunk_bytes: int = CHUNK_BYTES,
    within: float = EXPORT_TIMEOUT_SECONDS,
) -> AsyncGenerator[bytes, None]:
    """The ``COPY ... (FORMAT csv)`` output of ``query`` (``$n`` placeholders bound to
    ``args``), in chunks. ``cancel(pid)`` asks the server, over another connection, to
    cancel what backend ``pid`` runs; it must not raise (a ``COPY`` it cannot stop runs
    out, its batches dropped)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUED_BATCHES)
    dropping = False

    async def sink(data: bytes) -> None:
        if not dropping:
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
        if not copy.done():
            dropping = True
            while not queue.empty():  # frees a batch waiting for room
                queue.get_nowait()
            try:
                await cancel(conn.get_server_pid())
                with contextlib.suppress(asyncpg.QueryCanceledError, *_CLOSED):
                    await copy
            except BaseException:
                # Interrupted while stopping (the server shutting down): the connection is
                # closed under the COPY, which must not go back to the pool mid-operation.
                conn.terminate()
                copy.cancel()
                copy.add_done_callback(_retrieve)
                raise
            # Closed rather than reused: a cancel that reached the server after the COPY
            # had ended cannot touch the next statement on this connection.
            conn.terminate()
        else:
            _retrieve(copy)  # the loop above raised its error, if it had one


def _retrieve(task: asyncio.Task[str]) -> None:
    """Marks the exception of a task nobody awaits any more as seen."""
    if not task.cancelled():
        task.exception()
