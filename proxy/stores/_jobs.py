"""Job ledger and watcher operations, written once for both SQL engines."""

from __future__ import annotations

from collections.abc import Sequence

from proxy.jsoncodec import dumps_record
from proxy.stores._crossings import CrossingsMixin
from proxy.stores._sql import (
    Tx,
    decode_cursor,
    encode_cursor,
    encode_history,
    job_from_row,
)
from proxy.stores.base import DuplicateJobError, JobNotFoundError
from proxy.stores.records import (
    GROUP_KEYS,
    GroupKey,
    JobPage,
    JobRecord,
    JobStatus,
    NewJob,
    Source,
    SpendRow,
    Transition,
    WatcherStats,
)
from proxy.stores.transitions import apply_observation

WRITE_STATE = """
UPDATE jobs SET status = $2, first_processing_at = $3, terminal_at = $4, history = $5,
    last_seen_status = $6, client_polls = $7, watcher_polls = $8, last_client_poll_at = $9,
    output_urls = $10, error_reason = $11, final_cost_micros = $12, next_poll_at = $13,
    lease_owner = $14, lease_expires_at = $15, cost_source = $16
WHERE task_id = $1"""

OVERDUE_JOBS = (
    "SELECT * FROM jobs WHERE terminal_at IS NULL AND submitted_at <= $1"
    " ORDER BY submitted_at LIMIT $2"
)

_GROUP_EXPR = {
    "account": "account",
    "team": "team",
    "project": "project",
    "model": "pinned_slug",
    "status": "status",
    "price_source": "price_source",
    "cost_source": "cost_source",
}


class JobsMixin(CrossingsMixin):
    """``JobStore`` and ``WatcherStore`` over any ``SqlBase`` connection provider."""

    async def insert_job(self, job: NewJob) -> JobRecord:
        async with self._write(inline=True) as tx:
            inserted = await self._insert_job(tx, job)
        if inserted is None:
            raise DuplicateJobError(job.task_id)
        return inserted

    async def get_job(self, task_id: str) -> JobRecord | None:
        async with self._read(inline=True) as tx:
            row = await tx.fetchrow(
                self.dialect.sql("SELECT * FROM jobs WHERE task_id = $1"), task_id
            )
        return None if row is None else job_from_row(row)

    async def has_job(self, task_id: str) -> bool:
        # One column: SQLite describes every column a statement returns, 40 for SELECT *.
        async with self._read(inline=True) as tx:
            row = await tx.fetchrow(
                self.dialect.sql("SELECT 1 AS found FROM jobs WHERE task_id = $1"), task_id
            )
        return row is not None

    async def observe(
        self,
        task_id: str,
        status: str,
        at: float,
        *,
        source: Source = "client",
        output_urls: Sequence[str] | None = None,
        error_reason: str | None = None,
        final_cost_micros: int | None = None,
        cost_source: str | None = None,
        defer_until: float | None = None,
        polls: int = 1,
    ) -> Transition:
        async with self._write(inline=True) as tx:
            job = await self._locked_job(tx, task_id)
            if job is None:
                raise JobNotFoundError(task_id)
            transition = apply_observation(
                job, status, at, source=source, output_urls=output_urls,
                error_reason=error_reason, final_cost_micros=final_cost_micros,
                cost_source=cost_source, defer_until=defer_until, polls=polls,
            )  # fmt: skip
            await self._write_state(tx, transition.job)
            if transition.became_terminal:
                await self._settle_terminal(tx, transition.job)
        return transition

    async def defer(self, task_id: str, until: float) -> bool:
        sql = (
            f"UPDATE jobs SET next_poll_at = {self.dialect.greatest}(next_poll_at, $2)"  # noqa: S608
            " WHERE task_id = $1 AND next_poll_at IS NOT NULL AND terminal_at IS NULL"
        )
        async with self._write(inline=True) as tx:
            return await tx.execute(self.dialect.sql(sql), task_id, until) > 0

    async def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        team: str | None = None,
        project: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> JobPage:
        where: list[str] = []
        args: list[object] = []

        def arg(value: object) -> str:
            args.append(value)
            return f"${len(args)}"

        for column, value in (("status", status), ("team", team), ("project", project)):
            if value is not None:
                where.append(f"{column} = {arg(str(value))}")
        if since is not None:
            where.append(f"submitted_at >= {arg(since)}")
        if until is not None:
            where.append(f"submitted_at < {arg(until)}")
        if after is not None:
            at, task_id = decode_cursor(after)
            a, t = arg(at), arg(task_id)
            where.append(f"(submitted_at < {a} OR (submitted_at = {a} AND task_id < {t}))")
        sql = "SELECT * FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY submitted_at DESC, task_id DESC LIMIT {arg(max(1, limit) + 1)}"
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), *args)
        jobs = tuple(job_from_row(r) for r in rows[: max(1, limit)])
        more = len(rows) > len(jobs)
        return JobPage(jobs, encode_cursor(jobs[-1]) if more and jobs else None)

    async def spend_summary(
        self, since: float, until: float, group_by: Sequence[GroupKey] = ()
    ) -> list[SpendRow]:
        keys = [k for k in GROUP_KEYS if k in group_by]
        if len(keys) != len(set(group_by)):
            raise ValueError(f"group_by must be a subset of {GROUP_KEYS}, got {group_by!r}")
        exprs = [self.dialect.day_expr if k == "day" else _GROUP_EXPR[k] for k in keys]
        selected = "".join(f"{e} AS {k}, " for e, k in zip(exprs, keys, strict=True))
        sql = (
            f"SELECT {selected}COUNT(*) AS jobs,"  # noqa: S608 (whitelisted column expressions)
            " SUM(CASE WHEN estimated_cost_micros IS NULL THEN 1 ELSE 0 END) AS unpriced,"
            " CAST(COALESCE(SUM(estimated_cost_micros), 0) AS BIGINT) AS estimated,"
            " CAST(COALESCE(SUM(final_cost_micros), 0) AS BIGINT) AS final"
            " FROM jobs WHERE submitted_at >= $1 AND submitted_at < $2"
        )
        if exprs:
            positions = ", ".join(str(i + 1) for i in range(len(exprs)))
            sql += f" GROUP BY {positions} ORDER BY {positions}"
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), since, until)
        return [
            SpendRow(
                **{k: row[k] for k in keys},
                jobs=int(row["jobs"]),
                unpriced_jobs=int(row["unpriced"] or 0),
                estimated_cost_micros=int(row["estimated"]),
                final_cost_micros=int(row["final"]),
            )
            for row in rows
            if int(row["jobs"]) > 0
        ]

    async def in_flight_by_model(self) -> dict[str, int]:
        sql = "SELECT pinned_slug, COUNT(*) AS n FROM jobs WHERE terminal_at IS NULL GROUP BY 1"
        async with self._read() as tx:
            rows = await tx.fetch(sql)
        return {row["pinned_slug"]: int(row["n"]) for row in rows}

    async def watcher_stats(self, now: float) -> WatcherStats:
        due_sql = (
            "SELECT COUNT(*) AS n, MIN(next_poll_at) AS oldest FROM jobs WHERE next_poll_at <= $1"
        )
        stale_sql = "SELECT COUNT(*) AS n FROM jobs WHERE terminal_at IS NULL AND stale"
        async with self._read() as tx:
            due = await tx.fetch(self.dialect.sql(due_sql), now)
            stale = await tx.fetch(stale_sql)
        oldest = due[0]["oldest"]
        return WatcherStats(
            due=int(due[0]["n"]),
            oldest_due_at=None if oldest is None else float(oldest),
            stale=int(stale[0]["n"]),
        )

    async def expire_overdue(
        self, now: float, retention_seconds: float, limit: int = 500
    ) -> list[JobRecord]:
        sql = self.dialect.sql(OVERDUE_JOBS + self.dialect.skip_locked)
        expired: list[JobRecord] = []
        async with self._write() as tx:
            for row in await tx.fetch(sql, now - retention_seconds, limit):
                step = apply_observation(
                    job_from_row(row), JobStatus.EXPIRED.value, now, source="expiry"
                )
                if step.became_terminal:
                    await self._write_state(tx, step.job)
                    await self._settle_terminal(tx, step.job)
                    expired.append(step.job)
        return expired

    async def _locked_job(self, tx: Tx, task_id: str) -> JobRecord | None:
        sql = "SELECT * FROM jobs WHERE task_id = $1" + self.dialect.lock_rows  # noqa: S608
        row = await tx.fetchrow(self.dialect.sql(sql), task_id)
        return None if row is None else job_from_row(row)

    async def _write_state(self, tx: Tx, job: JobRecord) -> None:
        await tx.execute(
            self.dialect.sql(WRITE_STATE),
            job.task_id, job.status.value, job.first_processing_at, job.terminal_at,
            encode_history(job.history), job.last_seen_status, job.client_polls,
            job.watcher_polls, job.last_client_poll_at,
            dumps_record(list(job.output_urls)), job.error_reason,
            job.final_cost_micros, job.next_poll_at, job.lease_owner, job.lease_expires_at,
            job.cost_source,
        )  # fmt: skip
