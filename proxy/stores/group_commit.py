"""Group commit on the one SQLite connection: many writers' transactions, one fsync.

Writers still run one at a time (a FIFO lock) and each runs inside a ``SAVEPOINT`` of
one open ``BEGIN IMMEDIATE`` transaction, so a writer's failure rolls back only its own
statements. The ``COMMIT`` is shared: the writer that finds nobody waiting for the lock
(or the batch full) commits for everyone in the batch; writers that queued up meanwhile
(typically while the previous ``COMMIT`` was on disk) run next, in the next batch.

``BEGIN IMMEDIATE`` and ``COMMIT`` run on the connection's own thread, savepoints on the
event loop's (``proxy.stores.sqlite_conn``). Every writer, and every reader that may have
seen a batch's rows, returns only after the ``COMMIT`` holding them has landed: durable
on return, exactly as with one
``COMMIT`` per writer (``synchronous=FULL``), with one fsync per batch. A ``COMMIT``
that fails fails every writer of its batch (``StoreUnavailableError``): none of them
was durable, and none was told otherwise.

A lone writer commits at once (nobody is waiting), so latency at low load is that of
one transaction; under load, a batch is what arrived during the previous fsync, up to
``max_writes``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from proxy.stores.base import StoreUnavailableError
from proxy.stores.sqlite_conn import SqliteConnection

log = structlog.get_logger("proxy.store")
DEFAULT_MAX_WRITES = 64
_SAVEPOINT = "gc_member"


class _Batch:
    """The writers of one outer transaction, and the outcome of its ``COMMIT``."""

    __slots__ = ("done", "writes")

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Nobody may be left waiting for it (all cancelled): never warn of an unread error.
        self.done.add_done_callback(_retrieve)
        self.writes = 0

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class GroupCommit:
    """Gives the connection's users turns, and shares ``COMMIT`` among its writers."""

    def __init__(self, conn: SqliteConnection, *, max_writes: int = DEFAULT_MAX_WRITES) -> None:
        if max_writes < 1:
            raise ValueError("max_writes must be at least 1")
        self._conn = conn
        self._lock = asyncio.Lock()
        self._waiting = 0  # callers queued for a turn (the flusher not counted)
        self._batch: _Batch | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.max_writes = max_writes
        self.commits = 0  # COMMITs that landed (tests, and the batch-size figure)
        self.writes = 0  # writers they made durable

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        try:
            await self._conn.settled()  # nothing of an earlier turn still running
            yield
        finally:
            self._lock.release()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        """One writer's transaction: its statements run between enter and exit.

        Returns once they are committed; raises (after rolling back only them) if the
        body raised, and ``StoreUnavailableError`` if the shared ``COMMIT`` failed.
        """
        async with self._turn():
            batch = await self._open_batch()
            self._conn.execute_now(f"SAVEPOINT {_SAVEPOINT}")
            try:
                yield
                self._conn.execute_now(f"RELEASE {_SAVEPOINT}")
                batch.writes += 1
            except BaseException:
                self._undo(batch)
                raise
            finally:
                await self._settle()
        await self._durable(batch)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        """A read on the connection; returns once whatever it may have seen is durable."""
        async with self._turn():
            batch = self._batch
            try:
                yield
            finally:
                await self._settle()
        if batch is not None:
            await self._durable(batch)

    async def flush(self) -> None:
        """Commit the open batch, if any, now (before closing)."""
        async with self._turn():
            await self._settle(force=True)

    async def _open_batch(self) -> _Batch:
        batch = self._batch
        if batch is not None and not self._conn.in_transaction:
            # The engine rolled the whole transaction back (disk full, I/O error):
            # every earlier writer of the batch lost its rows.
            self._batch = None
            batch.fail(StoreUnavailableError("SQLite rolled back a group of writes"))
            batch = None
        if batch is None:
            if self._conn.in_transaction:  # a COMMIT that failed left it open
                await self._abandon()
            # On the thread: it may wait (busy_timeout) for another process's write lock.
            await self._conn.execute("BEGIN IMMEDIATE")
            batch = self._batch = _Batch()
        return batch

    def _undo(self, batch: _Batch) -> None:
        """Roll back this writer's statements only."""
        try:
            if self._conn.in_transaction:
                self._conn.execute_now(f"ROLLBACK TO {_SAVEPOINT}")
                self._conn.execute_now(f"RELEASE {_SAVEPOINT}")
        except (sqlite3.Error, ValueError) as exc:
            log.debug("sqlite.rollback_to_savepoint_failed", error=str(exc))
        if not self._conn.in_transaction and self._batch is batch:
            self._batch = None
            batch.fail(StoreUnavailableError("SQLite rolled back a group of writes"))

    async def _settle(self, *, force: bool = False) -> None:
        """Commit the open batch unless somebody queued for a turn will (turn held)."""
        batch = self._batch
        if batch is None:
            return
        if not force and self._waiting and batch.writes < self.max_writes:
            self._flush_later()  # should every waiter give up, the batch still commits
            return
        self._batch = None
        await self._end(batch, "COMMIT" if batch.writes else "ROLLBACK")

    async def _end(self, batch: _Batch, statement: str) -> None:
        # On the thread (fsync). Once asked for, it lands, and the next turn waits for it
        # before its own statements (``SqliteConnection.settled``).
        ending = self._conn.execute_shielded(statement)
        try:
            await asyncio.shield(ending)
        except asyncio.CancelledError:
            ending.add_done_callback(lambda done: self._ended(batch, statement, done))
            raise
        except (sqlite3.Error, ValueError) as exc:
            self._ended(batch, statement, ending)
            log.warning("sqlite.group_commit_failed", error=str(exc), writes=batch.writes)
            await self._abandon()
            return
        self._ended(batch, statement, ending)

    def _ended(self, batch: _Batch, statement: str, ending: asyncio.Future[int]) -> None:
        exc = None if ending.cancelled() else ending.exception()
        if ending.cancelled() or exc is not None:
            batch.fail(StoreUnavailableError(f"SQLite {statement} failed: {exc}"))
            return
        if statement == "COMMIT":
            self.commits += 1
            self.writes += batch.writes
        if not batch.done.done():
            batch.done.set_result(None)

    async def _abandon(self) -> None:
        """After a failed ``COMMIT`` (e.g. a deferred constraint): no transaction left open."""
        try:
            if self._conn.in_transaction:
                await asyncio.shield(self._conn.execute_shielded("ROLLBACK"))
        except (sqlite3.Error, ValueError) as exc:
            log.debug("sqlite.rollback_skipped", error=str(exc))

    def _flush_later(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_when_free())

    async def _flush_when_free(self) -> None:
        # Queued behind the present waiters (the lock is FIFO): commits what they left.
        await self._lock.acquire()
        try:
            await self._conn.settled()
            if self._batch is not None and not self._waiting:
                await self._settle(force=True)
        except (StoreUnavailableError, sqlite3.Error) as exc:
            log.warning("sqlite.group_flush_failed", error=str(exc))
        finally:
            self._lock.release()

    async def _durable(self, batch: _Batch) -> None:
        await asyncio.shield(batch.done)
