"""The settlement journal: spend the ledger settled, in commit order.

Every transaction that settles a job's spend (``_settle_terminal``, ``proxy.stores._crossings``)
appends one row with the next value of the ``settlement`` counter, as its last statement.
The counter is one row: on PostgreSQL the ``UPDATE`` holds its row lock until the
transaction ends, so a second settlement takes the next value only after the first has
committed (or rolled back, giving its value back); on SQLite every writer is serialised
anyway. Sequence order is therefore commit order, without gaps: a reader that sees the
counter at *N* sees every settlement up to *N*.

Balance reconciliation reads the journal by sequence, never by a time taken before a commit,
so each settlement is counted in exactly one window whatever commits late (a restart, a
stalled store). Retention removes rows once every reading has counted them and they are
older than ``retention.settlements_seconds``.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.stores._sql import Dialect, SqlBase, Tx
from proxy.stores.records import JobRecord, JobStatus
from proxy.stores.webhook_records import SettledSince

NEXT = "UPDATE counters SET value = value + 1 WHERE name = 'settlement' RETURNING value"
APPEND = """
INSERT INTO settlements (seq, task_id, team, micros, settled_at, account)
VALUES ($1, $2, $3, $4, $5, $6)"""
CURRENT = "SELECT value FROM counters WHERE name = 'settlement'"
PURGE = """
DELETE FROM settlements WHERE seq IN (
    SELECT seq FROM settlements WHERE settled_at < $1 AND seq <= $2 ORDER BY seq LIMIT $3{lock})"""


def settles_spend(job: JobRecord) -> bool:
    """Whether ``job``, just made terminal, turns money into spend (a success, a billed failure)."""
    final = job.final_cost_micros or 0
    return final > 0 and job.status in (JobStatus.SUCCESS, JobStatus.FAILED)


async def append_settlement(tx: Tx, dialect: Dialect, job: JobRecord, at: float) -> int:
    """Journal ``job``'s spend inside the transaction that settles it; its sequence number.

    Call it last in that transaction: the counter's row lock is held until the commit.
    """
    row = await tx.fetchrow(dialect.sql(NEXT))
    if row is None:  # the migration writes the row; its absence is a broken database
        raise RuntimeError("the settlement counter is missing (migration not applied?)")
    seq = int(row["value"])
    await tx.execute(
        dialect.sql(APPEND),
        seq,
        job.task_id,
        job.team,
        int(job.final_cost_micros or 0),
        at,
        job.account,
    )
    return seq


class SettlementsMixin(SqlBase):
    """Reads of the settlement journal, and its retention."""

    async def settled_since(
        self, after: int, teams: Sequence[str] | None = None, account: str | None = None
    ) -> SettledSince:
        """Spend settled after sequence ``after`` (of ``teams`` and of ``account`` if given)
        and the sequence read to.

        The counter is read first: every settlement up to it has committed, so the sum of the
        journal's rows in ``(after, through]`` is final, whatever commits meanwhile.
        """
        async with self._read() as tx:
            row = await tx.fetchrow(self.dialect.sql(CURRENT))
            through = int(row["value"]) if row is not None else 0
            sql = (
                "SELECT CAST(COALESCE(SUM(micros), 0) AS BIGINT) AS spent FROM settlements"
                " WHERE seq > $1 AND seq <= $2"
            )
            args: list[object] = [after, through]
            if teams:
                marks = ", ".join(f"${i + 3}" for i in range(len(teams)))
                sql += f" AND team IN ({marks})"
                args.extend(teams)
            if account is not None:
                args.append(account)
                sql += f" AND account = ${len(args)}"
            total = await tx.fetchrow(self.dialect.sql(sql), *args)
        return SettledSince(through, 0 if total is None else int(total["spent"]))

    async def purge_settlements(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` rows settled before ``before`` that every reading has counted."""
        async with self._write() as tx:
            row = await tx.fetchrow(
                "SELECT MIN(settled_through) AS counted, COUNT(*) AS readings FROM balance_readings"
            )
            if row is None or not row["readings"]:
                counted = await tx.fetchrow(self.dialect.sql(CURRENT))
                through = int(counted["value"]) if counted is not None else 0
            else:
                through = int(row["counted"])
            sql = PURGE.format(lock=self.dialect.skip_locked)
            return await tx.execute(self.dialect.sql(sql), before, through, limit)
