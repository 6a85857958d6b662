"""Budget definitions and batched window reads, written once for both SQL engines."""

from __future__ import annotations

from collections.abc import Sequence

from proxy.stores._budgets import window_from_row
from proxy.stores._sql import Row, SqlBase
from proxy.stores.records import (
    BUDGET_PERIODS,
    BUDGET_SCOPE_KINDS,
    Budget,
    BudgetPeriod,
    BudgetScopeKind,
    BudgetWindow,
)

PUT_BUDGET = """
INSERT INTO budgets (name, scope, subject, "window", limit_micros, hard, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, subject = excluded.subject,
    "window" = excluded."window", limit_micros = excluded.limit_micros, hard = excluded.hard,
    updated_at = excluded.updated_at
RETURNING *"""

WINDOWS_PER_QUERY = 1000
"""Pairs per statement of ``budget_windows`` (2 parameters each, well under both engines' caps)."""

_SCOPES: dict[str, BudgetScopeKind] = {k: k for k in BUDGET_SCOPE_KINDS}
_PERIODS: dict[str, BudgetPeriod] = {p: p for p in BUDGET_PERIODS}


def _budget_from_row(row: Row) -> Budget:
    return Budget(
        name=row["name"],
        scope=_SCOPES[row["scope"]],
        subject=row["subject"],
        window=_PERIODS[row["window"]],
        limit_micros=int(row["limit_micros"]),
        hard=bool(row["hard"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


def _check(budget: Budget) -> None:
    if budget.scope not in _SCOPES:
        raise ValueError(f"budget scope must be one of {BUDGET_SCOPE_KINDS}: {budget.scope!r}")
    if budget.window not in _PERIODS:
        raise ValueError(f"budget window must be one of {BUDGET_PERIODS}: {budget.window!r}")
    if (budget.scope == "global") != (budget.subject is None):
        raise ValueError("a global budget has no subject; every other budget has one")
    if budget.limit_micros < 0:
        raise ValueError("a budget limit cannot be negative")


class BudgetDefinitionsMixin(SqlBase):
    """``BudgetDefinitionStore`` over any ``SqlBase`` connection provider."""

    async def put_budget(self, budget: Budget) -> Budget:
        _check(budget)
        async with self._write() as tx:
            row = await tx.fetchrow(
                self.dialect.sql(PUT_BUDGET), budget.name, budget.scope, budget.subject,
                budget.window, budget.limit_micros, budget.hard, budget.created_at,
                budget.updated_at,
            )  # fmt: skip
        assert row is not None  # an upsert always returns its row
        return _budget_from_row(row)

    async def delete_budget(self, name: str) -> bool:
        async with self._write() as tx:
            return (
                await tx.execute(self.dialect.sql("DELETE FROM budgets WHERE name = $1"), name) > 0
            )

    async def list_budgets(self) -> list[Budget]:
        async with self._read() as tx:
            rows = await tx.fetch("SELECT * FROM budgets ORDER BY name")
        return [_budget_from_row(r) for r in rows]

    async def budget_windows(
        self, keys: Sequence[tuple[str, float]]
    ) -> dict[tuple[str, float], BudgetWindow]:
        pairs = list(dict.fromkeys((str(k), float(s)) for k, s in keys))
        found: dict[tuple[str, float], BudgetWindow] = {}
        async with self._read() as tx:
            for i in range(0, len(pairs), WINDOWS_PER_QUERY):
                chunk = pairs[i : i + WINDOWS_PER_QUERY]
                values = ", ".join(
                    f"(${2 * j + 1}, CAST(${2 * j + 2} AS DOUBLE PRECISION))"
                    for j in range(len(chunk))
                )
                args = [value for pair in chunk for value in pair]
                sql = (
                    "SELECT * FROM budget_windows"  # noqa: S608 (placeholders only)
                    f" WHERE (scope_key, window_start) IN (VALUES {values})"
                )
                for row in await tx.fetch(self.dialect.sql(sql), *args):
                    window = window_from_row(row)
                    found[(window.scope_key, window.window_start)] = window
        return found
