"""The shared store: PostgreSQL, used by any number of proxy replicas at once.

Each operation runs on a pooled connection; writes in one transaction at READ
COMMITTED. Rows a decision depends on are read ``FOR UPDATE`` (observe) or
claimed ``FOR UPDATE SKIP LOCKED`` (watcher leases, expiry), and idempotency
claims are a single ``INSERT ... ON CONFLICT``, so replicas never both win.
Migrations run at open inside ``pg_advisory_xact_lock``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager, suppress

import asyncpg

from proxy.stores._ledger_csv import CSV_PAGE_SIZE
from proxy.stores._pg_copy import copy_out
from proxy.stores._sql import POSTGRES, Row, Tx, rows_changed
from proxy.stores.base import StoreUnavailableError
from proxy.stores.sql_store import SqlStore
from proxy.stores.sql_text import Expr
from proxy.stores.webhook_records import RenderDelivery

DEFAULT_MIN_POOL = 1
DEFAULT_MAX_POOL = 10
AGGREGATE_WORK_MEM = "64MB"
"""Memory a report's aggregate may take on the server (``SET LOCAL work_mem``)."""
STATEMENT_TIMEOUT_SECONDS = 10.0
"""How long one statement (or waiting for a pooled connection) may take before the
store counts as unavailable: a stalled database must not hold requests forever."""

# What a database that is down, cut off or stalled raises; mapped to StoreUnavailableError.
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.QueryCanceledError,
    OSError,
    TimeoutError,
)


class _PgTx:
    def __init__(self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return [dict(r.items()) for r in await self._conn.fetch(sql, *args)]

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        row = await self._conn.fetchrow(sql, *args)
        return None if row is None else dict(row.items())

    async def execute(self, sql: str, *args: object) -> int:
        return rows_changed(await self._conn.execute(sql, *args))


async def _keep_session(_connection: asyncpg.Connection[asyncpg.Record]) -> None:
    """What a connection needs on its way back to the pool beyond asyncpg's own clean-up.

    asyncpg rolls back a transaction left open, in any case; its default reset then sends
    ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;``, a round trip
    per acquisition (three or four per submit). The store leaves nothing of the kind on a
    session: its only advisory lock is transaction-scoped (migrations), it opens no
    cursor, listens to nothing and sets no session setting.
    """


class PostgresStore(SqlStore):
    """``Store`` on a PostgreSQL database shared by every replica."""

    dialect = POSTGRES

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        *,
        render_delivery: RenderDelivery | None = None,
    ) -> None:
        self.render_delivery = render_delivery
        self._pool = pool

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        min_size: int = DEFAULT_MIN_POOL,
        max_size: int = DEFAULT_MAX_POOL,
        render_delivery: RenderDelivery | None = None,
    ) -> PostgresStore:
        """Connect a pool to ``dsn`` and migrate the database."""
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                command_timeout=STATEMENT_TIMEOUT_SECONDS,
                timeout=STATEMENT_TIMEOUT_SECONDS,
                reset=_keep_session,
            )
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"cannot reach PostgreSQL: {_describe(exc)}") from exc
        store = cls(pool, render_delivery=render_delivery)
        try:
            await store.migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def probe_write(self) -> None:
        """A connection in a transaction that may write (not read-only, not a standby)."""
        async with self._write() as tx:
            row = await tx.fetchrow(
                "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"
                " AS read_only"
            )
        if row is None or row["read_only"]:
            raise StoreUnavailableError("PostgreSQL is read-only (a standby, or read-only mode)")

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _open_write(self, *, inline: bool = False) -> AsyncIterator[Tx]:
        # ``inline`` is a hint for SQLite (statements on the loop's thread); asyncpg never blocks.
        try:
            async with (
                self._pool.acquire(timeout=STATEMENT_TIMEOUT_SECONDS) as conn,
                conn.transaction(),
            ):
                yield _PgTx(conn)
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"PostgreSQL unavailable: {_describe(exc)}") from exc

    @asynccontextmanager
    async def _open_read(self, *, inline: bool = False) -> AsyncIterator[Tx]:
        try:
            async with self._pool.acquire(timeout=STATEMENT_TIMEOUT_SECONDS) as conn:
                yield _PgTx(conn)
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"PostgreSQL unavailable: {_describe(exc)}") from exc

    async def _aggregate(self, sql: str, *args: object) -> list[Row]:
        """The report's one aggregate of the window, in a transaction of its own with
        ``work_mem`` raised for it: the planner cannot tell how few groups the day numbers
        and aliases make, and with the default 4 MB it sorts every row (on disk) instead of
        hashing them; with room for a hash table the report takes about half the time."""
        try:
            async with (
                self._pool.acquire(timeout=STATEMENT_TIMEOUT_SECONDS) as conn,
                conn.transaction(readonly=True),
            ):
                await conn.execute(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'")
                return [dict(r.items()) for r in await conn.fetch(sql, *args)]
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"PostgreSQL unavailable: {_describe(exc)}") from exc

    async def ledger_csv(
        self, since: float, until: float, fields: Sequence[Expr], page_size: int = CSV_PAGE_SIZE
    ) -> AsyncGenerator[bytes, None]:
        """One ``COPY ... TO STDOUT (FORMAT csv)``: the server formats and quotes the rows,
        streamed in bounded chunks at the consumer's pace (``page_size`` is SQLite's)."""
        query = self._csv_columns_query(fields)
        try:
            async with (
                self._pool.acquire(timeout=STATEMENT_TIMEOUT_SECONDS) as conn,
                aclosing(copy_out(conn, query, (since, until), cancel=self._cancel)) as chunks,
            ):  # the COPY stopped before its connection goes back, if closed early
                async for chunk in chunks:
                    yield chunk
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"PostgreSQL unavailable: {_describe(exc)}") from exc

    async def _cancel(self, pid: int) -> None:
        """``pg_cancel_backend(pid)`` over another of the pool's connections; a store that
        cannot be reached for it, or refuses it, leaves the statement running."""
        with suppress(asyncpg.PostgresError, *_UNAVAILABLE):
            async with self._pool.acquire(timeout=STATEMENT_TIMEOUT_SECONDS) as conn:
                await conn.execute("SELECT pg_cancel_backend($1)", pid)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
