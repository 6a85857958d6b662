"""The spend report: by day or ISO week, team, project and model, as CSV or JSON.

For each group: jobs, successes and failures, estimated and settled spend, cost
per successful job at P50 and P95 (exact, nearest rank: ``week,model`` is the weekly
roll-up of cost per job), and the refusals (with the estimated cost they avoided).
Totals equal the ledger's, to the micro-dollar. ``model`` is always the pinned slug
the job ran on; refusals that never pinned a model have none (no row per typed name).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, overload

from proxy import money
from proxy.governance import streaming
from proxy.stores.base import BalanceStore, LedgerReadStore, RefusalStore
from proxy.stores.records import (
    REPORT_KEYS,
    RefusalGroupKey,
    RefusalRow,
    ReportGroup,
    ReportKey,
)

__all__ = ["REPORT_KEYS", "ReportKey"]

K = TypeVar("K", bound=str)
COLUMNS = (
    "jobs",
    "succeeded",
    "failed",
    "estimated_usd",
    "spend_usd",
    "cost_per_job_p50_usd",
    "cost_per_job_p95_usd",
    "refused",
    "refused_savings_usd",
    "aliases",
)


class ReportStore(LedgerReadStore, RefusalStore, BalanceStore, Protocol):
    """What the report reads: the ledger's aggregates, refusals, balance readings."""


@dataclass
class _Refused:
    refusals: int = 0
    avoided_micros: int = 0


def week_of(day: str) -> str:
    """The ISO week (``2026-W48``) of a ``YYYY-MM-DD`` day (UTC)."""
    year, week, _ = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).isocalendar()
    return f"{year}-W{week:02d}"


def _refusal_key(row: RefusalRow, group_by: Sequence[ReportKey]) -> tuple[str | None, ...]:
    values: dict[str, str | None] = {
        "day": row.day, "week": week_of(row.day) if row.day else None, "team": row.team,
        "project": row.project, "model": row.model,
        "account": None,  # a refusal bought nothing: it bills to no account
        "api": None,  # a refusal is not attributed to a door: its rows have no api
    }  # fmt: skip
    return tuple(values[k] for k in group_by)


def _refusal_keys(group_by: Sequence[ReportKey]) -> list[RefusalGroupKey]:
    """What the refusals are grouped by in the store: weeks are rolled up from days here."""
    keys: list[RefusalGroupKey] = []
    for key in group_by:
        if key == "account" or key == "api":  # refusals bill to no account nor door
            continue
        wanted: RefusalGroupKey = "day" if key == "week" else key
        if wanted not in keys:
            keys.append(wanted)
    return keys


def _sort_key(key: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((v is None, v or "") for v in key)


async def build(
    store: ReportStore, since: float, until: float, group_by: Sequence[ReportKey]
) -> list[dict[str, Any]]:
    """One row per group, sorted by group key (``None`` last); money in US dollars, exact.

    Counts, sums and percentiles are aggregated by the store (``report_groups``: the same
    rows ``/admin/spend`` and the ledger gauges sum), refusals by ``refusal_summary``: one
    row per group, however many jobs the window holds.
    """
    groups: dict[tuple[str | None, ...], ReportGroup | None] = {}
    for group in await store.report_groups(since, until, group_by):
        groups[tuple(getattr(group, k) for k in group_by)] = group
    refused: dict[tuple[str | None, ...], _Refused] = {}
    for refusal in await store.refusal_summary(since, until, _refusal_keys(group_by)):
        key = _refusal_key(refusal, group_by)
        total = refused.setdefault(key, _Refused())
        total.refusals += refusal.refusals
        total.avoided_micros += refusal.avoided_micros
        groups.setdefault(key, None)
    rows: list[dict[str, Any]] = []
    for key in sorted(groups, key=_sort_key):
        g = groups[key] or ReportGroup()
        r = refused.get(key) or _Refused()
        row: dict[str, Any] = dict(zip(group_by, key, strict=True))
        row.update(
            jobs=g.jobs,
            succeeded=g.succeeded,
            failed=g.failed,
            estimated_usd=money.exact(g.estimated_cost_micros),
            spend_usd=money.exact(g.final_cost_micros),
            cost_per_job_p50_usd=None if g.p50_micros is None else money.exact(g.p50_micros),
            cost_per_job_p95_usd=None if g.p95_micros is None else money.exact(g.p95_micros),
            refused=r.refusals,
            refused_savings_usd=money.exact(r.avoided_micros),
            aliases=";".join(g.aliases) or None,  # how clients named the pinned model
        )
        rows.append(row)
    return rows


async def _one_page(rows: Sequence[Any]) -> AsyncIterator[Sequence[Any]]:
    yield rows


def csv_chunks(rows: Sequence[dict[str, Any]], group_by: Sequence[str]) -> AsyncIterator[bytes]:
    columns = [*group_by, *COLUMNS]
    return streaming.csv_chunks(columns, _one_page([[r.get(k) for k in columns] for r in rows]))


def json_chunks(
    rows: Sequence[dict[str, Any]],
    since: float,
    until: float,
    group_by: Sequence[str],
    unexplained: Sequence[dict[str, Any]] = (),
) -> AsyncIterator[bytes]:
    def tail() -> dict[str, Any]:
        doc: dict[str, Any] = {
            "total_spend_usd": money.exact(sum(money.parse(r["spend_usd"]) for r in rows))
        }
        if unexplained:  # only where balance reconciliation runs
            doc["unexplained_spend"] = list(unexplained)
        return doc

    head = {"since": since, "until": until, "group_by": list(group_by)}
    return streaming.json_chunks(head, "rows", _one_page(rows), tail)


async def unexplained_spend(store: BalanceStore) -> list[dict[str, Any]]:
    """Balance reconciliation per upstream team: spend the ledger does not explain, since
    the first balance reading (``proxy.governance.reconcile_balance``); empty if it is off."""
    return [
        {
            "team": r.team,
            "since": r.first_read_at,
            "read_at": r.read_at,
            "balance_usd": money.exact(r.balance_micros),
            "unexplained_usd": money.exact(r.unexplained_micros),
            "topups_usd": money.exact(r.topup_micros),
        }
        for r in await store.list_balance_readings()
    ]


@overload
def parse_group_by(raw: str) -> list[ReportKey]: ...
@overload
def parse_group_by(raw: str, allowed: Sequence[K]) -> list[K]: ...
def parse_group_by(raw: str, allowed: Sequence[str] = REPORT_KEYS) -> list[Any]:
    """``day,team,model`` as group keys; ``ValueError`` names the allowed ones."""
    keys: list[str] = []
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        match = next((key for key in allowed if key == part), None)
        if match is None:
            raise ValueError(f"group_by takes {', '.join(allowed)}; got {part!r}")
        keys.append(match)
    return keys
