"""Jobs as another API door shows them (``api_ref``, e.g. an OpenAI video id), for both SQL
engines: one job by its door id, one caller's page of them, the caller's submits the
admission queue holds (not sent yet, or refused or expired there) in the same order, and
removing one from its owner's views (``hidden_at``) while the ledger keeps the row for
finance."""

from __future__ import annotations

from typing import Literal

from proxy.stores._admission import row_to_queued
from proxy.stores._sql import SqlBase, job_from_row
from proxy.stores.admission_records import QueuedSubmit
from proxy.stores.records import JobRecord

Order = Literal["asc", "desc"]

BY_REF = "SELECT * FROM jobs WHERE api_ref = $1"
# A queue row's door, door id and submit time, read from the job it carries (JSON text).
_QUEUED_FIELDS = {
    "postgres": (
        "CAST(job AS jsonb)->>'api'",
        "CAST(job AS jsonb)->>'api_ref'",
        "CAST(CAST(job AS jsonb)->>'submitted_at' AS DOUBLE PRECISION)",
    ),
    "sqlite": (
        "json_extract(job, '$.api')",
        "json_extract(job, '$.api_ref')",
        "CAST(json_extract(job, '$.submitted_at') AS REAL)",
    ),
}
# Not sent (or sent without an answer yet recorded), refused, or expired in the queue.
UNSENT = (
    "SELECT * FROM admission_queue WHERE caller = $1"
    " AND state IN ('queued', 'dispatching', 'failed', 'expired')"
)
HIDE = "UPDATE jobs SET hidden_at = $3 WHERE api_ref = $1 AND caller = $2 AND hidden_at IS NULL"


class ApiJobsMixin(SqlBase):
    """``ApiJobStore`` over any ``SqlBase`` connection provider."""

    async def job_by_ref(self, api_ref: str) -> JobRecord | None:
        async with self._read() as tx:
            row = await tx.fetchrow(self.dialect.sql(BY_REF), api_ref)
        return None if row is None else job_from_row(row)

    async def api_jobs_page(
        self,
        caller: str,
        api: str,
        *,
        limit: int,
        order: Order = "desc",
        after: JobRecord | None = None,
    ) -> tuple[list[JobRecord], bool]:
        args: list[object] = [caller, api]
        sql = (
            "SELECT * FROM jobs WHERE caller = $1 AND api = $2"
            " AND api_ref IS NOT NULL AND hidden_at IS NULL"
        )
        cmp = "<" if order == "desc" else ">"
        if after is not None and after.api_ref is not None:
            args += [after.submitted_at, after.api_ref]
            sql += f" AND (submitted_at {cmp} $3 OR (submitted_at = $3 AND api_ref {cmp} $4))"
        direction = "DESC" if order == "desc" else "ASC"
        sql += f" ORDER BY submitted_at {direction}, api_ref {direction} LIMIT {max(1, limit) + 1}"
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), *args)
        jobs = [job_from_row(r) for r in rows[: max(1, limit)]]
        return jobs, len(rows) > len(jobs)

    async def api_queued_page(
        self,
        caller: str,
        api: str,
        *,
        limit: int,
        order: Order = "desc",
        after: tuple[float, str] | None = None,
    ) -> list[QueuedSubmit]:
        api_of, ref_of, at_of = _QUEUED_FIELDS[self.dialect.name]
        args: list[object] = [caller, api]
        sql = UNSENT + f" AND {api_of} = $2 AND {ref_of} IS NOT NULL"  # fixed expressions
        cmp = "<" if order == "desc" else ">"
        if after is not None:
            args += [after[0], after[1]]
            sql += f" AND ({at_of} {cmp} $3 OR ({at_of} = $3 AND {ref_of} {cmp} $4))"
        direction = "DESC" if order == "desc" else "ASC"
        sql += f" ORDER BY {at_of} {direction}, {ref_of} {direction} LIMIT {max(1, limit) + 1}"
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), *args)
        return [row_to_queued(r) for r in rows]

    async def hide_api_job(self, api_ref: str, caller: str, now: float) -> bool:
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(HIDE), api_ref, caller, now) > 0
