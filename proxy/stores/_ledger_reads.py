"""Finance reads of the job ledger, written once for both SQL engines (``LedgerReadStore``).

Nothing here loads the ledger into memory. The spend report's groups, with their exact
nearest-rank percentiles, are one aggregate statement (window functions rank each group's
costs); the cost gauges' percentiles the same over a day; a finance export reads terminal
jobs in pages of a bounded size, oldest first, each page a keyset query on the
``jobs_submitted`` index (``(submitted_at, task_id) > (last row's)``), so no cursor or
transaction stays open between pages and a page costs the same at the start and the end of
a month. On SQLite every statement here runs on the reader connection's thread (``_read``
without ``inline``), beside the writers and off the event loop; on PostgreSQL each is one
short query on a pooled connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence

from proxy.stores._sql import Row, SqlBase
from proxy.stores.records import (
    REPORT_KEYS,
    CostQuantiles,
    JobStatus,
    LedgerRow,
    ReportGroup,
    ReportKey,
)

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000

#: The ``jobs`` columns a ``LedgerRow`` holds (the SELECT list of every page).
LEDGER_COLUMNS = (
    "task_id",
    "pinned_slug",
    "status",
    "submitted_at",
    "terminal_at",
    "team",
    "project",
    "alias",
    "correlation_id",
    "price_table_version",
    "estimated_cost_micros",
    "final_cost_micros",
)
_TERMINAL = ", ".join(f"'{s.value}'" for s in JobStatus if s.terminal)
_PAGE_WHERE = f"submitted_at >= $1 AND submitted_at < $2 AND status IN ({_TERMINAL})"
_FIRST_PAGE = (
    f"SELECT {', '.join(LEDGER_COLUMNS)} FROM jobs WHERE {_PAGE_WHERE}"  # noqa: S608
    " ORDER BY submitted_at, task_id LIMIT $3"
)
_NEXT_PAGE = (
    f"SELECT {', '.join(LEDGER_COLUMNS)} FROM jobs WHERE {_PAGE_WHERE}"  # noqa: S608
    " AND (submitted_at, task_id) > ($4, $5) ORDER BY submitted_at, task_id LIMIT $3"
)

# Nearest rank, in integers so both engines and Python agree: ceil(n/2), ceil(95n/100).
_P50_RANK = "(n + 1) / 2"
_P95_RANK = "(95 * n + 99) / 100"
_COSTED = "CASE WHEN status = 'success' AND final_cost_micros IS NOT NULL THEN 1 ELSE 0 END"


def nearest_rank(count: int, per_cent: int) -> int:
    """The 1-based nearest rank of the ``per_cent`` percentile of ``count`` values."""
    return max(1, (per_cent * count + 99) // 100)


def ledger_row(row: Row) -> LedgerRow:
    terminal_at = row["terminal_at"]
    return LedgerRow(
        task_id=row["task_id"],
        pinned_slug=row["pinned_slug"],
        status=JobStatus(row["status"]),
        submitted_at=float(row["submitted_at"]),
        terminal_at=None if terminal_at is None else float(terminal_at),
        team=row["team"],
        project=row["project"],
        alias=row["alias"],
        correlation_id=row["correlation_id"],
        price_table_version=row["price_table_version"],
        estimated_cost_micros=row["estimated_cost_micros"],
        final_cost_micros=row["final_cost_micros"],
    )


def _opt_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


class LedgerReadsMixin(SqlBase):
    """``LedgerReadStore`` over any ``SqlBase`` connection provider."""

    def _key_expr(self, key: ReportKey) -> str:
        if key == "day":
            return self.dialect.day_expr
        if key == "week":
            return self.dialect.week("submitted_at")
        return "pinned_slug" if key == "model" else key

    async def ledger_pages(
        self, since: float, until: float, page_size: int = DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[list[LedgerRow]]:
        size = max(1, min(MAX_PAGE_SIZE, page_size))
        first, following = self.dialect.sql(_FIRST_PAGE), self.dialect.sql(_NEXT_PAGE)
        last: LedgerRow | None = None
        while True:
            async with self._read() as tx:
                if last is None:
                    rows = await tx.fetch(first, since, until, size)
                else:
                    rows = await tx.fetch(
                        following, since, until, size, last.submitted_at, last.task_id
                    )
            page = [ledger_row(r) for r in rows]
            if page:
                yield page
            if len(page) < size:
                return
            last = page[-1]

    async def report_groups(
        self, since: float, until: float, group_by: Sequence[ReportKey] = ()
    ) -> list[ReportGroup]:
        keys = [k for k in REPORT_KEYS if k in group_by]
        if len(keys) != len(set(group_by)):
            raise ValueError(f"group_by must be a subset of {REPORT_KEYS}, got {group_by!r}")
        exprs = "".join(f"{self._key_expr(k)} AS {k}, " for k in keys)
        names = "".join(f"{k}, " for k in keys)
        window = f"PARTITION BY {names}costed"
        where = "submitted_at >= $1 AND submitted_at < $2"
        sql = (
            f"SELECT {names}COUNT(*) AS jobs,"  # noqa: S608 (whitelisted column expressions)
            " SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS succeeded,"
            " SUM(CASE WHEN status IN ('failed', 'expired') THEN 1 ELSE 0 END) AS failed,"
            " CAST(COALESCE(SUM(estimated_cost_micros), 0) AS BIGINT) AS estimated,"
            " CAST(COALESCE(SUM(final_cost_micros), 0) AS BIGINT) AS final,"
            f" MAX(CASE WHEN costed = 1 AND rn = {_P50_RANK} THEN final_cost_micros END) AS p50,"
            f" MAX(CASE WHEN costed = 1 AND rn = {_P95_RANK} THEN final_cost_micros END) AS p95"
            f" FROM (SELECT {names}status, estimated_cost_micros, final_cost_micros, costed,"
            f" ROW_NUMBER() OVER ({window} ORDER BY final_cost_micros) AS rn,"
            f" COUNT(*) OVER ({window}) AS n"
            f" FROM (SELECT {exprs}status, estimated_cost_micros, final_cost_micros,"
            f" {_COSTED} AS costed FROM jobs WHERE {where}) AS j) AS r"
        )
        alias_sql = (
            f"SELECT DISTINCT {exprs}alias FROM jobs WHERE {where}"  # noqa: S608
            " AND alias IS NOT NULL AND alias <> pinned_slug"
        )
        if keys:
            sql += f" GROUP BY {names.rstrip(', ')}"
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), since, until)
        async with self._read() as tx:
            alias_rows = await tx.fetch(self.dialect.sql(alias_sql), since, until)
        aliases: dict[tuple[object, ...], list[str]] = {}
        for row in alias_rows:
            aliases.setdefault(tuple(row[k] for k in keys), []).append(row["alias"])
        groups = [
            ReportGroup(
                **{k: row[k] for k in keys},
                jobs=int(row["jobs"]),
                succeeded=int(row["succeeded"] or 0),
                failed=int(row["failed"] or 0),
                estimated_cost_micros=int(row["estimated"]),
                final_cost_micros=int(row["final"]),
                p50_micros=_opt_int(row["p50"]),
                p95_micros=_opt_int(row["p95"]),
                aliases=tuple(sorted(aliases.get(tuple(row[k] for k in keys), ()))),
            )
            for row in rows
            if int(row["jobs"]) > 0
        ]
        groups.sort(key=lambda g: tuple((v is None, v or "") for v in _key(g, keys)))
        return groups

    async def cost_quantiles(
        self, since: float, until: float, *, merge: Collection[str] = ()
    ) -> list[CostQuantiles]:
        merged = sorted(merge)
        if merged:
            marks = ", ".join(f"${i + 3}" for i in range(len(merged)))
            model = f"CASE WHEN pinned_slug IN ({marks}) THEN NULL ELSE pinned_slug END"
        else:
            model = "pinned_slug"
        sql = (
            "SELECT model, MAX(n) AS jobs,"  # noqa: S608 (placeholders only)
            f" MAX(CASE WHEN rn = {_P50_RANK} THEN final_cost_micros END) AS p50,"
            f" MAX(CASE WHEN rn = {_P95_RANK} THEN final_cost_micros END) AS p95"
            " FROM (SELECT model, final_cost_micros,"
            " ROW_NUMBER() OVER (PARTITION BY model ORDER BY final_cost_micros) AS rn,"
            " COUNT(*) OVER (PARTITION BY model) AS n"
            f" FROM (SELECT {model} AS model, final_cost_micros FROM jobs"
            " WHERE status = 'success' AND submitted_at >= $1 AND submitted_at < $2"
            " AND final_cost_micros IS NOT NULL) AS j) AS r GROUP BY model"
        )
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), since, until, *merged)
        return [
            CostQuantiles(
                model=row["model"],
                jobs=int(row["jobs"]),
                p50_micros=int(row["p50"]),
                p95_micros=int(row["p95"]),
            )
            for row in rows
        ]

    async def costed_models(self, since: float, until: float) -> list[str]:
        sql = (
            "SELECT DISTINCT pinned_slug FROM jobs WHERE status = 'success'"
            " AND submitted_at >= $1 AND submitted_at < $2 AND final_cost_micros IS NOT NULL"
        )
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), since, until)
        return sorted(row["pinned_slug"] for row in rows)


def _key(group: ReportGroup, keys: Sequence[ReportKey]) -> tuple[str | None, ...]:
    return tuple(getattr(group, k) for k in keys)
