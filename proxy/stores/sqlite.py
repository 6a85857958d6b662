"""The embedded default store: one SQLite file in WAL mode, used by one process.

Two connections. The writers' connection: its users take turns, concurrent writers share
one ``BEGIN IMMEDIATE`` ... ``COMMIT`` (group commit, each writer in its own savepoint:
``proxy.stores.group_commit``), and another process touching the same file waits
(``busy_timeout``) instead of interleaving; ``synchronous=FULL`` makes a write durable
before it returns. The reader connection serves the long reads (reports, gauges, scans)
beside the writers: in WAL mode it sees exactly what is committed, and never holds up a
submit. A statement that can wait (for a lock, the disk, or a long scan) runs on its
connection's own thread, so the event loop never blocks on it; the hot path's short
indexed statements run inline (``proxy.stores.sqlite_conn``). A third connection, read
only, answers ``has_job`` inline without a turn (the first look at each task a poll
names): it sees what is committed, as a poll after the submit that answered its task id
does, and never waits behind a writer's ``COMMIT``. ``":memory:"`` works (one connection
for everything), for tests.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from proxy.stores._joined import joined
from proxy.stores._ledger_csv import CsvPage
from proxy.stores._sql import SQLITE, Row, Tx
from proxy.stores.base import StoreUnavailableError
from proxy.stores.group_commit import DEFAULT_MAX_WRITES, GroupCommit
from proxy.stores.sql_store import SqlStore
from proxy.stores.sqlite_conn import SqliteConnection
from proxy.stores.webhook_records import RenderDelivery

DEFAULT_BUSY_TIMEOUT_MS = 5000
_HAS_JOB = "SELECT 1 FROM jobs WHERE task_id = ?"
# A locked, full or vanished database file; mapped to StoreUnavailableError.
_UNAVAILABLE = (sqlite3.OperationalError,)


class _ThreadTx:
    """Statements on the connection's thread: anything that may take long."""

    def __init__(self, conn: SqliteConnection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return await self._conn.fetch(sql, args)

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        return await self._conn.fetchrow(sql, args)

    async def execute(self, sql: str, *args: object) -> int:
        return await self._conn.execute(sql, args)

    async def fetch_lines(self, sql: str, *args: object) -> tuple[bytes, int, Any]:
        return await self._conn.fetch_lines(sql, args)


class _InlineTx:
    """Statements on the event loop's thread: the hot path's short, indexed ones."""

    def __init__(self, conn: SqliteConnection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return self._conn.fetch_now(sql, args)

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        return self._conn.fetchrow_now(sql, args)

    async def execute(self, sql: str, *args: object) -> int:
        return self._conn.execute_now(sql, args)


async def _switch_to_wal(conn: SqliteConnection, within: float) -> None:
    """``journal_mode = WAL``; SQLite answers "locked" at once (no busy wait) while another
    connection is switching the same new file, so retry within the busy timeout."""
    deadline = time.monotonic() + within
    delay = 0.01
    while True:
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


class SqliteStore(SqlStore):
    """``Store`` on a single SQLite database file."""

    dialect = SQLITE

    def __init__(
        self,
        conn: SqliteConnection,
        *,
        group_commit_max_writes: int = DEFAULT_MAX_WRITES,
        render_delivery: RenderDelivery | None = None,
    ) -> None:
        self.render_delivery = render_delivery
        self._conn = conn
        self._group = GroupCommit(conn, max_writes=group_commit_max_writes)
        self._thread_tx = _ThreadTx(conn)
        self._inline_tx = _InlineTx(conn)
        # Long reads (reports, gauges, scans) on a connection of their own: in WAL mode
        # they see what is committed and never hold up the writers' turns. None for
        # ":memory:", whose database only the one connection sees.
        self._reader: SqliteConnection | None = None
        self._reader_tx: _ThreadTx | None = None
        self._reader_lock = asyncio.Lock()
        # ``has_job`` without a turn: inline, committed rows only (None for ":memory:").
        self._peek: SqliteConnection | None = None
        self._peek_cursor: sqlite3.Cursor | None = None

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        group_commit_max_writes: int = DEFAULT_MAX_WRITES,
        render_delivery: RenderDelivery | None = None,
    ) -> SqliteStore:
        """Open (creating if needed) the database at ``path`` and migrate it."""
        try:
            conn = await SqliteConnection.open(path)
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"cannot open SQLite database {path!r}: {exc}") from exc
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await _switch_to_wal(conn, busy_timeout_ms / 1000)
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA foreign_keys = ON")
            store = cls(
                conn,
                group_commit_max_writes=group_commit_max_writes,
                render_delivery=render_delivery,
            )
            await store.migrate()
            if path != ":memory:" and not path.startswith("file:"):
                await store._open_reader(path, busy_timeout_ms)
        except BaseException:
            await conn.close()
            raise
        return store

    async def _open_reader(self, path: str, busy_timeout_ms: int) -> None:
        reader = await SqliteConnection.open(path)
        try:
            await reader.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await reader.execute("PRAGMA query_only = ON")
        except BaseException:
            await reader.close()
            raise
        self._reader, self._reader_tx = reader, _ThreadTx(reader)
        peek = await SqliteConnection.open(path)
        try:
            # Never wait on the event loop's thread: a busy database answers at once, and
            # ``has_job`` asks in turn instead.
            await peek.execute("PRAGMA busy_timeout = 0")
            await peek.execute("PRAGMA query_only = ON")
        except BaseException:
            await peek.close()
            raise
        self._peek = peek
        self._peek_cursor = peek.plain_cursor()

    async def has_job(self, task_id: str) -> bool:
        cursor = self._peek_cursor
        if cursor is None or joined(self) is not None:  # a joined transaction sees its own rows
            return await super().has_job(task_id)
        try:
            return cursor.execute(_HAS_JOB, (task_id,)).fetchone() is not None
        except sqlite3.OperationalError:  # busy (a WAL reset) or worse: ask in turn
            return await super().has_job(task_id)

    async def probe_write(self) -> None:
        """Take the write lock and let it go (``BEGIN IMMEDIATE``, nothing written)."""
        async with self._write() as tx:
            await tx.execute("UPDATE schema_version SET version = version WHERE 0")

    @property
    def group_commit(self) -> GroupCommit:
        """The writers' shared COMMIT (its counters show the batch sizes reached)."""
        return self._group

    async def close(self) -> None:
        try:
            await self._group.flush()
        finally:
            await self._conn.close()
            if self._peek is not None:
                await self._peek.close()
            if self._reader is not None:
                async with self._reader_lock:
                    await self._reader.close()

    @asynccontextmanager
    async def _open_write(self, *, inline: bool = False) -> AsyncIterator[Tx]:
        """One writer's transaction, group-committed (``proxy.stores.group_commit``).

        Returns once its statements are on disk; a failure or a cancellation rolls back
        its statements only, and never replaces the exception that caused it. ``inline``:
        its statements are short and indexed, and run on the event loop's thread.
        """
        try:
            async with self._group.write():
                yield self._inline_tx if inline else self._thread_tx
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"SQLite unavailable: {exc}") from exc

    async def _csv_page(self, sql: str, args: Sequence[object]) -> CsvPage:
        """One page of an export's CSV lines, read and joined in one trip to the reader
        connection's thread (no row mappings)."""
        async with self._read() as tx:
            assert isinstance(tx, _ThreadTx)
            data, count, last = await tx.fetch_lines(sql, *args)
        return CsvPage(data, count, None if last is None else (last[0], last[1]))

    @asynccontextmanager
    async def _open_read(self, *, inline: bool = False) -> AsyncIterator[Tx]:
        """Reads: ``inline`` ones (short, indexed) on the writers' connection, in turn;
        the others on the reader connection, beside the writers (committed rows only)."""
        try:
            if inline or self._reader_tx is None:
                async with self._group.read():
                    yield self._inline_tx if inline else self._thread_tx
            else:
                async with self._reader_lock:
                    yield self._reader_tx
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"SQLite unavailable: {exc}") from exc
