"""Finance reads of the job ledger, written once for both SQL engines (``LedgerReadStore``).

Nothing here loads the ledger into memory. The spend report's groups are one aggregate
statement by group, status, alias and final cost, grouped on the submit day's number (the
day's text and its ISO week are made once per group, in Python, not once per row): the
successes' rows are each group's cost histogram (one row per distinct price), from which
the exact nearest-rank percentiles follow (folded on a worker thread). The cost gauges'
percentiles are window functions over a day. A finance export's jobs are read in pages of a
bounded size, oldest first, each page a keyset query on the ``jobs_submitted`` index
(``(submitted_at, task_id) > (last row's)``), so no cursor or transaction stays open between
pages and a page costs the same at the start and the end of a month (the CSV export has the
database format its lines: ``proxy.stores._ledger_csv``). On SQLite every statement here
runs on the reader connection's thread (``_read`` without ``inline``), beside the writers and
off the event loop; on PostgreSQL each is one short query on a pooled connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import date, timedelta
from functools import lru_cache

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
_EPOCH = date(1970, 1, 1)
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
    "price_source",
    "cost_source",
    "estimate_low_micros",
    "estimate_high_micros",
    "account",
    "caller",
    "api",
)
_TERMINAL = ", ".join(f"'{s.value}'" for s in JobStatus if s.terminal)
TERMINAL_WHERE = f"submitted_at >= $1 AND submitted_at < $2 AND status IN ({_TERMINAL})"
"""Terminal jobs submitted in ``[$1, $2)``: the rows of a finance export."""
_FIRST_PAGE = (
    f"SELECT {', '.join(LEDGER_COLUMNS)} FROM jobs WHERE {TERMINAL_WHERE}"  # noqa: S608
    " ORDER BY submitted_at, task_id LIMIT $3"
)
# The pages after the first: ``$1`` is the last row's time (not the window's start), so SQLite
# seeks the index there; from the window's start it would scan every earlier row again (it
# does not seek on the row value), each page slower than the last.
_NEXT_PAGE = (
    f"SELECT {', '.join(LEDGER_COLUMNS)} FROM jobs WHERE {TERMINAL_WHERE}"  # noqa: S608
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
        price_source=row["price_source"],
        cost_source=row["cost_source"],
        estimate_low_micros=row["estimate_low_micros"],
        estimate_high_micros=row["estimate_high_micros"],
        account=row["account"],
        caller=row["caller"],
        api=row["api"] or "modellix",
    )


def _opt_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


class LedgerReadsMixin(SqlBase):
    """``LedgerReadStore`` over any ``SqlBase`` connection provider."""

    def _key_expr(self, key: ReportKey) -> str:
        if key in ("day", "week"):  # both from the day number; text made per group in _fold
            return self.dialect.day_number("submitted_at")
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
                else:  # the window starts at the last row's time (see ``_NEXT_PAGE``)
                    at = last.submitted_at
                    rows = await tx.fetch(following, at, until, size, at, last.task_id)
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
        columns = {_column(k): self._key_expr(k) for k in keys}  # day and week: one column
        exprs = "".join(f"{expr} AS {name}, " for name, expr in columns.items())
        positions = ", ".join(str(i + 1) for i in range(len(columns) + 3))
        # One scan of the covering index ``jobs_ledger``: per group, status, alias (as the
        # client named a pinned model, when it differs) and final cost, how many jobs and
        # their estimates. The successes' rows are each group's cost histogram (as many rows
        # as distinct prices), from which the exact nearest-rank percentiles follow.
        sql = (
            f"SELECT {exprs}status,"  # noqa: S608 (expressions of ours)
            " CASE WHEN alias <> pinned_slug THEN alias END AS alias,"
            " final_cost_micros AS cost, COUNT(*) AS jobs,"
            " CAST(COALESCE(SUM(estimated_cost_micros), 0) AS BIGINT) AS estimated"
            f" FROM jobs WHERE submitted_at >= $1 AND submitted_at < $2 GROUP BY {positions}"
        )
        rows = await self._aggregate(self.dialect.sql(sql), since, until)
        return await asyncio.to_thread(_fold, keys, rows)

    async def _aggregate(self, sql: str, *args: object) -> list[Row]:
        """A read aggregating the whole window (PostgreSQL gives it more memory)."""
        async with self._read() as tx:
            return await tx.fetch(sql, *args)

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


def _percentile(histogram: list[tuple[int, int]], total: int, per_cent: int) -> int | None:
    """The nearest-rank percentile of ``total`` values given as sorted ``(value, count)``."""
    if total == 0:
        return None
    rank, seen = nearest_rank(total, per_cent), 0
    for value, count in histogram:
        seen += count
        if seen >= rank:
            return value
    return None  # not reached: the counts add up to total


def _column(key: ReportKey) -> str:
    return "day_number" if key in ("day", "week") else key


@lru_cache(maxsize=4096)
def _day(number: int) -> tuple[str, str]:
    """The ``YYYY-MM-DD`` day and its ISO week (``2026-W48``) of a day number (UTC)."""
    day = _EPOCH + timedelta(days=number)
    year, week, _ = day.isocalendar()
    return day.isoformat(), f"{year}-W{week:02d}"


def _key_value(row: Row, key: ReportKey) -> str | None:
    if key == "day":
        return _day(int(row["day_number"]))[0]
    if key == "week":
        return _day(int(row["day_number"]))[1]
    value: str | None = row[key]
    return value


def _fold(keys: Sequence[ReportKey], rows: Sequence[Row]) -> list[ReportGroup]:
    """The groups from the per-(group, status, alias, cost) counts; sorted by key, ``None``
    last. Days rolled up into weeks add up their rows here."""
    totals: dict[tuple[str | None, ...], list[int]] = {}
    costs: dict[tuple[str | None, ...], dict[int, int]] = {}
    aliases: dict[tuple[str | None, ...], set[str]] = {}
    for row in rows:
        key = tuple(_key_value(row, k) for k in keys)
        jobs, cost, status = int(row["jobs"]), row["cost"], row["status"]
        t = totals.setdefault(key, [0, 0, 0, 0, 0])  # jobs, succeeded, failed, estimated, final
        t[0] += jobs
        t[3] += int(row["estimated"])
        if cost is not None:
            t[4] += int(cost) * jobs
        if status == JobStatus.SUCCESS.value:
            t[1] += jobs
            if cost is not None:
                histogram = costs.setdefault(key, {})
                histogram[int(cost)] = histogram.get(int(cost), 0) + jobs
        elif status in (JobStatus.FAILED.value, JobStatus.EXPIRED.value):
            t[2] += jobs
        if row["alias"] is not None:
            aliases.setdefault(key, set()).add(row["alias"])
    groups = []
    for key in sorted(totals, key=lambda k: tuple((v is None, v or "") for v in k)):
        jobs, succeeded, failed, estimated, final = totals[key]
        ordered = sorted(costs.get(key, {}).items())
        costed = sum(count for _, count in ordered)
        groups.append(
            ReportGroup(
                **dict(zip(keys, key, strict=True)),
                jobs=jobs,
                succeeded=succeeded,
                failed=failed,
                estimated_cost_micros=estimated,
                final_cost_micros=final,
                p50_micros=_percentile(ordered, costed, 50),
                p95_micros=_percentile(ordered, costed, 95),
                aliases=tuple(sorted(aliases.get(key, ()))),
            )
        )
    return groups
