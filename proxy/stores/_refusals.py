"""The refusals ledger, written once for both SQL engines."""

from __future__ import annotations

from collections.abc import Sequence

from proxy.stores._sql import SqlBase
from proxy.stores.records import REFUSAL_GROUP_KEYS, Refusal, RefusalGroupKey, RefusalRow

INSERT_REFUSAL = """
INSERT INTO refusals (at, caller, team, project, model, reason, estimated_cost_micros)
VALUES ($1, $2, $3, $4, $5, $6, $7)"""

_GROUP_EXPR = {"team": "team", "project": "project", "model": "model", "reason": "reason"}


class RefusalsMixin(SqlBase):
    """``RefusalStore`` over any ``SqlBase`` connection provider."""

    async def record_refusal(self, refusal: Refusal) -> None:
        async with self._write() as tx:
            await tx.execute(
                self.dialect.sql(INSERT_REFUSAL), refusal.at, refusal.caller, refusal.team,
                refusal.project, refusal.model, refusal.reason, refusal.estimated_cost_micros,
            )  # fmt: skip

    async def purge_refusals(self, before: float, limit: int) -> int:
        sql = (
            "DELETE FROM refusals WHERE id IN ("
            " SELECT id FROM refusals WHERE at < $1 ORDER BY at LIMIT $2)"
        )
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), before, limit)

    async def refusal_summary(
        self, since: float, until: float, group_by: Sequence[RefusalGroupKey] = ()
    ) -> list[RefusalRow]:
        wanted = {"reason" if k == "status" else k for k in group_by}
        if not wanted <= set(REFUSAL_GROUP_KEYS):
            raise ValueError(
                f"group_by must be a subset of {REFUSAL_GROUP_KEYS} (or status), got {group_by!r}"
            )
        keys = [k for k in REFUSAL_GROUP_KEYS if k in wanted]
        exprs = [self.dialect.day("at") if k == "day" else _GROUP_EXPR[k] for k in keys]
        selected = "".join(f"{e} AS {k}, " for e, k in zip(exprs, keys, strict=True))
        sql = (
            f"SELECT {selected}COUNT(*) AS refusals,"  # noqa: S608 (whitelisted column expressions)
            " CAST(COALESCE(SUM(estimated_cost_micros), 0) AS BIGINT) AS avoided"
            " FROM refusals WHERE at >= $1 AND at < $2"
        )
        if exprs:
            positions = [str(i + 1) for i in range(len(exprs))]
            sql += f" GROUP BY {', '.join(positions)}"
            sql += " ORDER BY " + ", ".join(f"{p} NULLS LAST" for p in positions)
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), since, until)
        return [
            RefusalRow(
                **{k: row[k] for k in keys},
                refusals=int(row["refusals"]),
                avoided_micros=int(row["avoided"]),
            )
            for row in rows
            if int(row["refusals"]) > 0
        ]
