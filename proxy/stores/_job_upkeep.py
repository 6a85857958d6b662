"""Job reads and purges for housekeeping (retention, gauges), written once for both engines.

Kept apart from the request-path ledger operations in ``_jobs``: nothing here is on
the submit or poll path.
"""

from __future__ import annotations

from collections.abc import Iterable

from proxy.stores._sql import SqlBase
from proxy.stores.records import UnknownJobs

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

_CHUNK = 500


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
        wanted = list(dict.fromkeys(task_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ", ".join(f"${i + 1}" for i in range(len(chunk)))
            sql = f"SELECT task_id FROM jobs WHERE terminal_at IS NULL AND task_id IN ({marks})"  # noqa: S608
            async with self._read() as tx:
                rows = await tx.fetch(self.dialect.sql(sql), *chunk)
            found |= {row["task_id"] for row in rows}
        return found
