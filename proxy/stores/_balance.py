"""Balance reconciliation state: the last reading per team (the ledger's side is the settlement
journal, ``proxy.stores._settlements``)."""

from __future__ import annotations

from proxy.stores._sql import Row, SqlBase
from proxy.stores.webhook_records import BalanceReading

UPSERT_READING = """
INSERT INTO balance_readings (team, balance_micros, read_at, first_read_at, unexplained_micros,
    topup_micros, window_drop_micros, window_ledger_micros, window_unexplained_micros,
    settled_through)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (team) DO UPDATE SET balance_micros = excluded.balance_micros,
    read_at = excluded.read_at, first_read_at = excluded.first_read_at,
    unexplained_micros = excluded.unexplained_micros, topup_micros = excluded.topup_micros,
    window_drop_micros = excluded.window_drop_micros,
    window_ledger_micros = excluded.window_ledger_micros,
    window_unexplained_micros = excluded.window_unexplained_micros,
    settled_through = excluded.settled_through"""


def reading_from_row(row: Row) -> BalanceReading:
    return BalanceReading(
        team=row["team"],
        balance_micros=int(row["balance_micros"]),
        read_at=float(row["read_at"]),
        first_read_at=float(row["first_read_at"]),
        unexplained_micros=int(row["unexplained_micros"]),
        topup_micros=int(row["topup_micros"]),
        window_drop_micros=int(row["window_drop_micros"]),
        window_ledger_micros=int(row["window_ledger_micros"]),
        window_unexplained_micros=int(row["window_unexplained_micros"]),
        settled_through=int(row["settled_through"]),
    )


class BalanceMixin(SqlBase):
    """``BalanceStore`` over any ``SqlBase`` connection provider."""

    async def get_balance_reading(self, team: str) -> BalanceReading | None:
        sql = "SELECT * FROM balance_readings WHERE team = $1"
        async with self._read() as tx:
            row = await tx.fetchrow(self.dialect.sql(sql), team)
        return None if row is None else reading_from_row(row)

    async def list_balance_readings(self) -> list[BalanceReading]:
        async with self._read() as tx:
            rows = await tx.fetch("SELECT * FROM balance_readings ORDER BY team")
        return [reading_from_row(r) for r in rows]

    async def put_balance_reading(self, reading: BalanceReading) -> None:
        r = reading
        async with self._write() as tx:
            await tx.execute(
                self.dialect.sql(UPSERT_READING), r.team, r.balance_micros, r.read_at,
                r.first_read_at, r.unexplained_micros, r.topup_micros, r.window_drop_micros,
                r.window_ledger_micros, r.window_unexplained_micros, r.settled_through,
            )  # fmt: skip
