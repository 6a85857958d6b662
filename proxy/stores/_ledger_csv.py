"""A finance export's CSV lines, formatted by the database (``LedgerReadStore.ledger_csv``).

The columns are ``proxy.stores.sql_text`` expressions over ``jobs`` (the export declares
them), so each row leaves the database as its finished CSV line and Python only joins a
page of lines: no row objects, no per-row formatting. Here, for SQLite: pages of terminal
jobs oldest first, each a keyset query on ``jobs_submitted`` (``(submitted_at, task_id) >
(last row's)``) run on the reader connection's thread, beside the writers and off the event
loop; the page's lines are joined on a worker thread. PostgreSQL streams one ``COPY``
instead (``proxy.stores._pg_copy``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from proxy.stores._ledger_reads import MAX_PAGE_SIZE, TERMINAL_WHERE
from proxy.stores._sql import Row, SqlBase
from proxy.stores.sql_text import Expr, csv_line, render

CSV_PAGE_SIZE = 5000
"""Rows per page of a formatted export (a chunk of about 3 MB for FOCUS)."""


def _lines(rows: Sequence[Row]) -> bytes:
    return ("\n".join([row["line"] for row in rows]) + "\n").encode()


class LedgerCsvMixin(SqlBase):
    """``ledger_csv`` read in keyset pages (the SQLite way; PostgreSQL overrides it)."""

    def _csv_columns_query(self, fields: Sequence[Expr]) -> str:
        """The export's rows, oldest first, as separate text columns (for ``COPY``)."""
        columns = ", ".join(f"{render(f, self.dialect)} AS c{i}" for i, f in enumerate(fields))
        return (
            f"SELECT {columns} FROM jobs WHERE {TERMINAL_WHERE}"  # noqa: S608 (ours)
            " ORDER BY submitted_at, task_id"
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
        outer = f"SELECT submitted_at, task_id, {made.line} AS line FROM ({{}}) AS page LIMIT $3"  # noqa: S608
        first = self.dialect.sql(outer.format(inner + order))
        following = self.dialect.sql(
            outer.format(f"{inner} AND (submitted_at, task_id) > ($4, $5){order}")
        )
        last: Row | None = None
        while True:
            async with self._read() as tx:
                if last is None:
                    rows = await tx.fetch(first, since, until, size)
                else:
                    rows = await tx.fetch(
                        following, since, until, size, last["submitted_at"], last["task_id"]
                    )
            if rows:
                yield await asyncio.to_thread(_lines, rows)
            if len(rows) < size:
                return
            last = rows[-1]
