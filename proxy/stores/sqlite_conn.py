"""The one SQLite connection of a process, and where each statement runs.

A statement that can wait, for another process's write lock (``BEGIN IMMEDIATE``), for
the disk (``COMMIT``: fsync, and the WAL checkpoint it may trigger) or for long (a
report over the whole ledger, a purge), runs on the connection's own thread, so the
event loop never blocks on it. A short statement of the hot path (a primary-key read, an
insert inside a transaction that already holds the write lock) runs right on the event
loop's thread: it touches only the page cache and the WAL file's tail, and a hop to
another thread and back costs more than the statement itself.

Only one statement runs at a time: the store's users take turns (``GroupCommit``), and
whoever takes a turn first waits for a statement still running on the thread from an
earlier turn (one whose caller was cancelled).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from proxy.stores._sql import Row

T = TypeVar("T")


def _row(cursor: sqlite3.Cursor, values: Sequence[Any]) -> Row:
    return dict(zip([c[0] for c in cursor.description], values, strict=True))


class SqliteConnection:
    """A ``sqlite3`` connection with a thread of its own for the statements that wait."""

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._executor = executor
        self._running: asyncio.Future[Any] | None = None  # the last statement sent to the thread

    @classmethod
    async def open(cls, path: str) -> SqliteConnection:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(
                executor,
                lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False),
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        conn.row_factory = _row
        return cls(conn, executor)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    async def settled(self) -> None:
        """Wait for a statement still running on the thread (its caller was cancelled)."""
        running = self._running
        while running is not None and not running.done():
            await asyncio.wait([running])
            running = self._running

    def _off(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        self._running = future
        return future

    # --- on the event loop's thread ------------------------------------------------------

    def fetch_now(self, sql: str, args: Sequence[object]) -> list[Row]:
        return self._conn.execute(sql, args).fetchall()

    def fetchrow_now(self, sql: str, args: Sequence[object]) -> Row | None:
        row: Row | None = self._conn.execute(sql, args).fetchone()
        return row

    def execute_now(self, sql: str, args: Sequence[object] = ()) -> int:
        return self._conn.execute(sql, args).rowcount

    def plain_cursor(self) -> sqlite3.Cursor:
        """A cursor of this connection whose rows are plain tuples, to keep for one statement
        run again and again on the event loop's thread (no cursor made, no row mapped, per run)."""
        cursor = self._conn.cursor()
        cursor.row_factory = None
        return cursor

    # --- on the connection's thread ------------------------------------------------------

    async def fetch(self, sql: str, args: Sequence[object]) -> list[Row]:
        return await self._off(lambda: self._conn.execute(sql, args).fetchall())

    async def fetchrow(self, sql: str, args: Sequence[object]) -> Row | None:
        row: Row | None = await self._off(lambda: self._conn.execute(sql, args).fetchone())
        return row

    async def execute(self, sql: str, args: Sequence[object] = ()) -> int:
        return await self._off(lambda: self._conn.execute(sql, args).rowcount)

    async def fetch_lines(self, sql: str, args: Sequence[object]) -> tuple[bytes, int, Any]:
        """Rows whose last column is a line of UTF-8 bytes: the lines joined (each ended with
        a line break), how many, and the last row (``None`` if none); all on the thread, with
        no row mapping made."""

        def run() -> tuple[bytes, int, Any]:
            cursor = self._conn.cursor()
            cursor.row_factory = None
            rows = cursor.execute(sql, args).fetchall()
            if not rows:
                return b"", 0, None
            return b"\n".join([row[-1] for row in rows]) + b"\n", len(rows), rows[-1]

        return await self._off(run)

    def execute_shielded(self, sql: str) -> asyncio.Future[int]:
        """Send ``sql`` to the thread; the future lands whatever happens to its awaiter."""
        return self._off(lambda: self._conn.execute(sql).rowcount)

    async def close(self) -> None:
        await self.settled()
        try:
            await self._off(self._conn.close)
        finally:
            self._executor.shutdown(wait=False)
