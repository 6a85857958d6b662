"""A finance export's CSV lines, formatted by the database (``LedgerReadStore.ledger_csv``).

The columns are ``proxy.stores.sql_text`` expressions over ``jobs`` (the export declares
them), so each row leaves the database as its finished CSV line and Python only joins a
page of lines: no row objects, no per-row formatting. Here, for SQLite: pages of terminal
jobs oldest first, each a keyset query on ``jobs_submitted`` (``(submitted_at, task_id) >
(last row's)``) run on the reader connection's thread, beside the writers and off the event
loop, which also joins the page's lines. The next page is read while one is written to the
client (two pages in memory at most). PostgreSQL streams one ``COPY`` instead
(``proxy.stores._pg_copy``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from proxy.stores._ledger_reads import MAX_PAGE_SIZE, TERMINAL_WHERE
from proxy.stores._sql import SqlBase
from proxy.stores.sql_text import Const, Expr, csv_line, render

CSV_PAGE_SIZE = 2000
"""Rows per page of a formatted export (a chunk of about 1.3 MB for FOCUS)."""


@dataclass(frozen=True, slots=True)
class CsvPage:
    """A page of CSV lines: their bytes (each line ended), how many, the last row's key."""

    data: bytes
    rows: int
    last: tuple[float, str] | None


def _lines(lines: Sequence[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n" if lines else b""


class LedgerCsvMixin(SqlBase):
    """``ledger_csv`` read in keyset pages (the SQLite way; PostgreSQL overrides it)."""

    def _csv_columns_query(self, fields: Sequence[Expr]) -> str:
        """The export's rows, oldest first, as separate text columns (for ``COPY``): each
        distinct field computed once in the inner query (``OFFSET 0`` keeps PostgreSQL from
        pulling it up into the outer one, which would compute a field as often as it
        appears), fixed text as literals."""
        names: dict[Expr, str] = {}
        columns = []
        for i, field in enumerate(fields):
            if isinstance(field, Const):
                value = render(field, self.dialect)
            else:
                value = names.setdefault(field, f"f{len(names)}")
            columns.append(f"{value} AS c{i}")
        inner = ", ".join(f"{render(f, self.dialect)} AS {name}" for f, name in names.items())
        return (
            f"SELECT {', '.join(columns)} FROM (SELECT {inner} FROM jobs"  # noqa: S608 (ours)
            f" WHERE {TERMINAL_WHERE} ORDER BY submitted_at, task_id OFFSET 0) AS page"
        )

    async def ledger_csv(
        self, since: float, until: float, fields: Sequence[Expr], page_size: int = CSV_PAGE_SIZE
    ) -> AsyncGenerator[bytes, None]:
        size = max(1, min(MAX_PAGE_SIZE * 2, page_size))
        made = csv_line(fields, self.dialect)
        # Each distinct field once per row in the inner query, the line joined from those in
        # the outer one; the outer LIMIT keeps the inner query whole (not flattened into the
        # outer, which would compute a field as often as it appears), read as a co-routine
        # in the inner query's order.
        inner = (
            f"SELECT submitted_at, task_id, {', '.join(made.columns)}"  # noqa: S608 (ours)
            f" FROM jobs WHERE {TERMINAL_WHERE}"
        )
        order = " ORDER BY submitted_at, task_id LIMIT $3"
        line = self.dialect.utf8_template.format(made.line)  # bytes: no decoding, no encoding
        outer = f"SELECT submitted_at, task_id, {line} AS line FROM ({{}}) AS page LIMIT $3"  # noqa: S608
        first = self.dialect.sql(outer.format(inner + order))
        following = self.dialect.sql(
            outer.format(f"{inner} AND (submitted_at, task_id) > ($4, $5){order}")
        )
        # One page read ahead: the next page is formatted while this one goes to the client.
        ahead: asyncio.Future[CsvPage] | None = asyncio.ensure_future(
            self._csv_page(first, (since, until, size))
        )
        try:
            while ahead is not None:
                page = await ahead
                ahead = None
                if page.rows == size and page.last is not None:
                    # From the last row's time, not ``since``: SQLite seeks the index there
                    # (not on the row value), instead of scanning every earlier row again.
                    args = (page.last[0], until, size, *page.last)
                    ahead = asyncio.ensure_future(self._csv_page(following, args))
                if page.rows:
                    yield page.data
        finally:
            if ahead is not None:  # closed early: the page read ahead is not wanted
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await ahead

    async def _csv_page(self, sql: str, args: Sequence[object]) -> CsvPage:
        """One page of ``(submitted_at, task_id, line)`` rows, its lines joined."""
        async with self._read() as tx:
            rows = await tx.fetch(sql, *args)
        data = await asyncio.to_thread(_lines, [row["line"] for row in rows])
        last = (rows[-1]["submitted_at"], rows[-1]["task_id"]) if rows else None
        return CsvPage(data, len(rows), last)
