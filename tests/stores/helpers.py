"""Builders and raw-SQL access shared by the store contract tests."""

from __future__ import annotations

from typing import Any

import aiosqlite
import asyncpg

from proxy.stores import sqlite_path
from proxy.stores.records import NewJob

T0 = 1_767_225_600.0
"""2026-01-01T00:00:00Z: the injected clock starts here."""


def new_job(task_id: str = "video/task-1", **fields: Any) -> NewJob:
    """A submitted job with plausible defaults; ``fields`` override any of them."""
    values: dict[str, Any] = {
        "task_id": task_id,
        "caller": "fp:3b1f",
        "team": "growth",
        "project": "ads",
        "alias": "minimax/hailuo",
        "pinned_slug": "minimax/hailuo-02-t2v",
        "input_hash": "sha256:abc",
        "correlation_id": "corr-1",
        "request_id": "req-1",
        "price_table_version": "2026-01",
        "estimated_cost_micros": 1_250_000,
        "submitted_at": T0,
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "submitted_by": "replica-a",
        "next_poll_at": T0 + 15,
    }
    values.update(fields)
    return NewJob(**values)


async def raw_query(url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Run one statement on a fresh connection of its own, outside the store."""
    if url.startswith("sqlite:"):
        async with aiosqlite.connect(sqlite_path(url)) as conn:
            async with conn.execute(sql, args) as cursor:
                rows = [tuple(r) for r in await cursor.fetchall()]
            await conn.commit()
            return rows
    pg = await asyncpg.connect(url)
    try:
        return [tuple(r.values()) for r in await pg.fetch(sql, *args)]
    finally:
        await pg.close()


async def raw_many(url: str, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Run one statement for many rows in a single transaction, outside the store."""
    if url.startswith("sqlite:"):
        async with aiosqlite.connect(sqlite_path(url)) as conn:
            await conn.executemany(sql.replace("$", "?"), rows)
            await conn.commit()
        return
    pg = await asyncpg.connect(url)
    try:
        await pg.executemany(sql, rows)
    finally:
        await pg.close()
