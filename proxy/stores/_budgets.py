"""Budget reservations, written once for both SQL engines.

``budget_reserve`` is one transaction: for every scope (in a fixed order, so two
transactions never wait on each other in a cycle) it makes sure the window row
exists and then runs ``UPDATE ... SET reserved = reserved + amount WHERE
spent + reserved + amount <= limit``. If any update matches no row, the whole
transaction rolls back. On PostgreSQL concurrent updates of one window row queue
on its row lock and re-check the condition, so no interleaving overshoots.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from proxy.stores._sql import Row, SqlBase, Tx
from proxy.stores.records import BudgetScope, BudgetWindow, Reservation, ReserveResult

ENSURE_WINDOW = """
INSERT INTO budget_windows (scope_key, window_start, limit_micros) VALUES ($1, $2, $3)
ON CONFLICT (scope_key, window_start) DO NOTHING"""

HOLD = """
UPDATE budget_windows SET reserved_micros = reserved_micros + $4, limit_micros = $3
WHERE scope_key = $1 AND window_start = $2 AND spent_micros + reserved_micros + $4 <= $3"""

MOVE = """
UPDATE budget_windows
SET reserved_micros = reserved_micros - $3, spent_micros = spent_micros + $4
WHERE scope_key = $1 AND window_start = $2"""

GET_WINDOW = "SELECT * FROM budget_windows WHERE scope_key = $1 AND window_start = $2"


class _Refused(Exception):
    def __init__(self, scope: BudgetScope) -> None:
        super().__init__(scope.scope_key)
        self.scope = scope


def window_from_row(row: Row) -> BudgetWindow:
    return BudgetWindow(
        scope_key=row["scope_key"],
        window_start=float(row["window_start"]),
        limit_micros=int(row["limit_micros"]),
        spent_micros=int(row["spent_micros"]),
        reserved_micros=int(row["reserved_micros"]),
    )


class BudgetsMixin(SqlBase):
    """``BudgetStore`` over any ``SqlBase`` connection provider."""

    async def budget_reserve(
        self,
        scopes: Sequence[BudgetScope],
        amount_micros: int,
        *,
        reservation_id: str | None = None,
        owner: str | None = None,
        at: float | None = None,
    ) -> ReserveResult:
        if amount_micros < 0:
            raise ValueError("a reservation cannot be negative")
        ordered = sorted(set(scopes), key=lambda s: (s.scope_key, s.window_start))
        reservation = Reservation(
            reservation_id=reservation_id or uuid.uuid4().hex,
            amount_micros=amount_micros,
            scopes=tuple((s.scope_key, s.window_start) for s in ordered),
        )
        sql = self.dialect.sql
        try:
            async with self._write(inline=True) as tx:
                for s in ordered:
                    await tx.execute(
                        sql(ENSURE_WINDOW), s.scope_key, s.window_start, s.limit_micros
                    )
                    args = (s.scope_key, s.window_start, s.limit_micros, amount_micros)
                    if not await tx.execute(sql(HOLD), *args):
                        raise _Refused(s)
                await tx.execute(
                    sql(
                        "INSERT INTO budget_reservations (reservation_id, scopes, amount_micros,"
                        " state, owner, created_at) VALUES ($1, $2, $3, 'reserved', $4, $5)"
                    ),
                    reservation.reservation_id,
                    json.dumps([list(pair) for pair in reservation.scopes], ensure_ascii=False),
                    amount_micros,
                    owner,
                    at,
                )
        except _Refused as refused:
            s = refused.scope
            window = await self.budget_window(s.scope_key, s.window_start)
            spent, held = (window.spent_micros, window.reserved_micros) if window else (0, 0)
            return ReserveResult(
                refused=BudgetWindow(
                    scope_key=s.scope_key,
                    window_start=s.window_start,
                    limit_micros=s.limit_micros,
                    spent_micros=spent,
                    reserved_micros=held,
                )
            )
        return ReserveResult(reservation=reservation)

    async def budget_settle(self, reservation_id: str, final_micros: int) -> bool:
        return await self._close_reservation(reservation_id, "settled", final_micros)

    async def budget_release(self, reservation_id: str) -> bool:
        return await self._close_reservation(reservation_id, "released", 0)

    async def budget_window(self, scope_key: str, window_start: float) -> BudgetWindow | None:
        async with self._read(inline=True) as tx:
            row = await tx.fetchrow(self.dialect.sql(GET_WINDOW), scope_key, window_start)
        return None if row is None else window_from_row(row)

    async def _close_reservation(self, reservation_id: str, state: str, final: int) -> bool:
        async with self._write(inline=True) as tx:
            return await self._close_in(tx, reservation_id, state, final)

    async def _close_in(self, tx: Tx, reservation_id: str, state: str, final: int) -> bool:
        """Settle or release an open reservation inside ``tx``; False if it is not open."""
        sql = self.dialect.sql
        row = await tx.fetchrow(
            sql(
                "UPDATE budget_reservations SET state = $2, final_micros = $3, owner = NULL"
                " WHERE reservation_id = $1 AND state = 'reserved'"
                " RETURNING scopes, amount_micros"
            ),
            reservation_id,
            state,
            final,
        )
        if row is None:
            return False
        pairs: list[list[object]] = json.loads(row["scopes"])
        # Stored in the same (scope_key, window_start) order reserve locked them in.
        for scope_key, window_start in pairs:
            await tx.execute(
                sql(MOVE), str(scope_key), float(str(window_start)), row["amount_micros"], final
            )
        return True

    async def _hand_over(self, tx: Tx, reservation_ids: Sequence[str | None]) -> None:
        """The ledger row written in ``tx`` holds these reservations now, not a replica."""
        for reservation_id in reservation_ids:
            if reservation_id is not None:
                await tx.execute(
                    self.dialect.sql(
                        "UPDATE budget_reservations SET owner = NULL WHERE reservation_id = $1"
                    ),
                    reservation_id,
                )
