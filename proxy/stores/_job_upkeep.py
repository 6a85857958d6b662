"""Job reads and purges for housekeeping, and the watcher's batched writes, for both engines.

Kept apart from the request-path ledger operations in ``_jobs``: nothing here is on
the submit or poll path. The watcher leases due jobs in chunks (``lease_due_at``),
writes their next polls many to a transaction (``reschedule_many``) and sleeps until
the earliest due time (``earliest_due_at``), all served by the ``jobs_due`` index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from proxy.stores._sql import IN_CHUNK, SqlBase, job_from_row
from proxy.stores.base import LeasedJob, Reschedule
from proxy.stores.records import JobRecord, UnknownJobs

PURGE_TERMINAL = """
DELETE FROM jobs WHERE task_id IN (
    SELECT task_id FROM jobs
    WHERE submitted_at <= $1 AND terminal_at IS NOT NULL AND terminal_at <= $1
    LIMIT $2)
AND terminal_at IS NOT NULL AND terminal_at <= $1"""
"""``submitted_at <= cutoff`` is implied (a job ends after it starts) and lets the
``jobs_submitted`` index bound the scan."""

UNKNOWN_JOBS = """
SELECT COUNT(*) AS n,
    CAST(COALESCE(SUM(CASE WHEN reservation_id IS NOT NULL THEN estimated_cost_micros END), 0)
        AS BIGINT) AS held
FROM jobs WHERE status = 'unknown'"""

DUE_FOR_LEASE = (
    "SELECT task_id, next_poll_at FROM jobs WHERE next_poll_at <= $1 ORDER BY next_poll_at LIMIT $2"
)
"""The due jobs and their due times: an index range scan on ``jobs_due``."""

LEASE_CHOSEN = """
UPDATE jobs SET lease_owner = $1, lease_expires_at = $2, next_poll_at = $2
WHERE task_id IN ({ids}) AND next_poll_at <= $3
RETURNING *"""

EARLIEST_DUE = "SELECT MIN(next_poll_at) AS at FROM jobs WHERE next_poll_at IS NOT NULL"

_SET_NEXT_POLL = """
SET next_poll_at = u.next_poll_at, watcher_attempts = u.attempts, stale = u.stale,
    watcher_polls = jobs.watcher_polls + u.polls, lease_owner = NULL, lease_expires_at = NULL"""
_OWNED_OPEN = "jobs.task_id = u.task_id AND jobs.lease_owner = $1 AND jobs.terminal_at IS NULL"

RESCHEDULE_MANY_PG = f"""
UPDATE jobs {_SET_NEXT_POLL}
FROM unnest($2::text[], $3::float8[], $4::int[], $5::bool[], $6::int[])
    AS u(task_id, next_poll_at, attempts, stale, polls)
WHERE {_OWNED_OPEN}"""
"""One statement of fixed text for any batch size (prepared once by asyncpg)."""

RESCHEDULE_MANY_SQLITE = f"""
UPDATE jobs {_SET_NEXT_POLL}
FROM (SELECT column1 AS task_id, column2 AS next_poll_at, column3 AS attempts,
        column4 AS stale, column5 AS polls FROM (VALUES {{rows}})) AS u
WHERE {_OWNED_OPEN}"""  # noqa: S608 (constant text; the rows are placeholders)
"""Starts with ``UPDATE`` (not ``WITH``) so that sqlite3 reports the rows changed."""


class JobUpkeepMixin(SqlBase):
    """Housekeeping reads and bounded purges of the ``jobs`` table."""

    async def purge_terminal_jobs(self, before: float, limit: int) -> int:
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(PURGE_TERMINAL), before, limit)

    async def unknown_jobs(self) -> UnknownJobs:
        async with self._read() as tx:
            row = await tx.fetchrow(UNKNOWN_JOBS)
        if row is None:
            return UnknownJobs(jobs=0, held_micros=0)
        return UnknownJobs(jobs=int(row["n"]), held_micros=int(row["held"]))

    async def open_among(self, task_ids: Iterable[str]) -> set[str]:
        sql = "SELECT task_id AS id FROM jobs WHERE terminal_at IS NULL AND task_id IN ({marks})"
        return await self._select_among(sql, (), task_ids)

    async def lease_due_at(
        self, owner: str, now: float, limit: int, lease_seconds: float
    ) -> list[LeasedJob]:
        # Two statements in one transaction: PostgreSQL's RETURNING gives the new
        # ``next_poll_at`` (the lease end) and SQLite's cannot name a joined table,
        # so the due times are read (and on PostgreSQL locked, skipping locked rows) first.
        pick = self.dialect.sql(DUE_FOR_LEASE + self.dialect.skip_locked)
        async with self._write() as tx:
            due = {r["task_id"]: float(r["next_poll_at"]) for r in await tx.fetch(pick, now, limit)}
            if not due:
                return []
            marks = ", ".join(f"${i + 4}" for i in range(len(due)))
            sql = self.dialect.sql(LEASE_CHOSEN.format(ids=marks))
            rows = await tx.fetch(sql, owner, now + lease_seconds, now, *due)
        leased = [LeasedJob(job_from_row(r), due[r["task_id"]]) for r in rows]
        return sorted(leased, key=lambda lj: (lj.due_at, lj.job.task_id))

    async def lease_due(
        self, owner: str, now: float, limit: int, lease_seconds: float
    ) -> list[JobRecord]:
        """``lease_due_at`` without the due times, the oldest submit first."""
        leased = await self.lease_due_at(owner, now, limit, lease_seconds)
        return sorted((lj.job for lj in leased), key=lambda j: (j.submitted_at, j.task_id))

    async def reschedule(
        self,
        task_id: str,
        owner: str,
        next_poll_at: float,
        watcher_attempts: int,
        stale: bool,
    ) -> bool:
        """One job's next poll (``reschedule_many`` of one)."""
        item = Reschedule(task_id, next_poll_at, watcher_attempts, stale)
        return await self.reschedule_many(owner, [item]) > 0

    async def reschedule_many(self, owner: str, items: Sequence[Reschedule]) -> int:
        latest = {item.task_id: item for item in items}  # one row per job: the last word
        batch = list(latest.values())
        if not batch:
            return 0
        changed = 0
        async with self._write() as tx:
            for start in range(0, len(batch), IN_CHUNK):
                chunk = batch[start : start + IN_CHUNK]
                if self.dialect.name == "postgres":
                    changed += await tx.execute(
                        RESCHEDULE_MANY_PG,
                        owner,
                        [i.task_id for i in chunk],
                        [i.next_poll_at for i in chunk],
                        [i.watcher_attempts for i in chunk],
                        [i.stale for i in chunk],
                        [i.polls for i in chunk],
                    )
                    continue
                rows = ", ".join(
                    f"(${5 * k + 2}, ${5 * k + 3}, ${5 * k + 4}, ${5 * k + 5}, ${5 * k + 6})"
                    for k in range(len(chunk))
                )
                args: list[object] = [owner]
                for i in chunk:
                    args += [i.task_id, i.next_poll_at, i.watcher_attempts, i.stale, i.polls]
                sql = self.dialect.sql(RESCHEDULE_MANY_SQLITE.format(rows=rows))
                changed += await tx.execute(sql, *args)
        return changed

    async def earliest_due_at(self) -> float | None:
        async with self._read() as tx:
            row = await tx.fetchrow(EARLIEST_DUE)
        return None if row is None or row["at"] is None else float(row["at"])
