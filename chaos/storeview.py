"""Read-only access to the proxy's store, straight to its tables (never through the proxy).

The suite reads rows as plain dicts with ``SELECT *``, so it keeps working when
migrations add columns. SQLite is opened read-only (``mode=ro``; the proxy's WAL
lets a reader in while it writes); PostgreSQL is reached directly, never through
the relay the faults are injected into.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg

from proxy.stores import sqlite_path

Row = dict[str, Any]


class StoreView:
    def __init__(self, url: str) -> None:
        self.url = url
        self._pg: asyncpg.Connection[Any] | None = None

    @property
    def postgres(self) -> bool:
        return self.url.startswith(("postgresql://", "postgres://"))

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
            self._pg = None

    async def _conn(self) -> asyncpg.Connection[Any]:
        if self._pg is None or self._pg.is_closed():
            self._pg = await asyncpg.connect(self.url, timeout=10)
        return self._pg

    async def tables(self) -> list[str]:
        if self.postgres:
            conn = await self._conn()
            found = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
            return [str(r["tablename"]) for r in found]
        rows = await self._sqlite(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY 1"
        )
        return [str(r["name"]) for r in rows]

    async def rows(self, table: str) -> list[Row]:
        """Every row of ``table`` (``[]`` if the table does not exist yet)."""
        if table not in await self.tables():
            return []
        if self.postgres:
            conn = await self._conn()
            return [dict(r) for r in await conn.fetch(f'SELECT * FROM "{table}"')]
        return await self._sqlite(f'SELECT * FROM "{table}"')

    async def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in await self.tables():
            if self.postgres:
                conn = await self._conn()
                out[table] = int(await conn.fetchval(f'SELECT count(*) FROM "{table}"'))
            else:
                rows = await self._sqlite(f'SELECT count(*) AS n FROM "{table}"')
                out[table] = int(rows[0]["n"])
        return out

    async def size_bytes(self) -> int:
        """The database's size on disk (SQLite: the file plus its WAL)."""
        if self.postgres:
            conn = await self._conn()
            return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        path = Path(sqlite_path(self.url))
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())

    async def _sqlite(self, sql: str) -> list[Row]:
        path = sqlite_path(self.url)

        def run() -> list[Row]:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            try:
                conn.row_factory = sqlite3.Row
                return [dict(r) for r in conn.execute(sql).fetchall()]
            finally:
                conn.close()

        return await asyncio.to_thread(run)
