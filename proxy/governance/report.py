"""The spend report: by day or ISO week, team, project and model, as CSV or JSON.

For each group: jobs, successes and failures, estimated and settled spend, cost
per successful job at P50 and P95 (exact, nearest rank: ``week,model`` is the weekly
roll-up of cost per job), and the refusals (with the estimated cost they avoided).
Totals equal the ledger's, to the micro-dollar. ``model`` is always the pinned slug
the job ran on; refusals that never pinned a model have none (no row per typed name).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, overload

from proxy import money
from proxy.stores.base import Store
from proxy.stores.records import (
    GroupKey,
    JobCost,
    JobStatus,
    RefusalGroupKey,
    RefusalRow,
    SpendRow,
)

ReportKey = Literal["day", "week", "team", "project", "model"]
REPORT_KEYS: tuple[ReportKey, ...] = ("day", "week", "team", "project", "model")
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


@dataclass
class Group:
    key: tuple[str | None, ...]
    jobs: int = 0
    succeeded: int = 0
    failed: int = 0
    estimated_micros: int = 0
    spend_micros: int = 0
    costs: list[int] = field(default_factory=list)
    refusals: int = 0
    avoided_micros: int = 0
    aliases: set[str] = field(default_factory=set)


def percentile(values: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile (``q`` in 0..1) of integer micro-dollars."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def week_of(day: str) -> str:
    """The ISO week (``2026-W48``) of a ``YYYY-MM-DD`` day (UTC)."""
    year, week, _ = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).isocalendar()
    return f"{year}-W{week:02d}"


def _job_key(job: JobCost, group_by: Sequence[ReportKey]) -> tuple[str | None, ...]:
    day = _day(job.submitted_at)
    values: dict[str, str | None] = {
        "day": day, "week": week_of(day), "team": job.team, "project": job.project,
        "model": job.model,
    }  # fmt: skip
    return tuple(values[k] for k in group_by)


def _row_key(row: SpendRow | RefusalRow, group_by: Sequence[ReportKey]) -> tuple[str | None, ...]:
    values: dict[str, str | None] = {
        "day": row.day, "week": week_of(row.day) if row.day else None, "team": row.team,
        "project": row.project, "model": row.model,
    }  # fmt: skip
    return tuple(values[k] for k in group_by)


def _store_keys(group_by: Sequence[ReportKey]) -> list[GroupKey]:
    """What the store groups by: weeks are rolled up from days here."""
    keys: list[GroupKey] = []
    for key in group_by:
        wanted: GroupKey = "day" if key == "week" else key
        if wanted not in keys:
            keys.append(wanted)
    return keys


async def build(
    store: Store, since: float, until: float, group_by: Sequence[ReportKey]
) -> list[dict[str, Any]]:
    """One row per group, sorted by group key; money in US dollars (exact to the micro).

    Counts and sums are the store's ``spend_summary`` (what ``/admin/spend`` and the ledger
    gauges read); the percentiles come from each successful job's final cost.
    """
    groups: dict[tuple[str | None, ...], Group] = {}
    keys = _store_keys(group_by)
    for spent in await store.spend_summary(since, until, [*keys, "status"]):
        key = _row_key(spent, group_by)
        group = groups.setdefault(key, Group(key))
        group.jobs += spent.jobs
        group.estimated_micros += spent.estimated_cost_micros
        group.spend_micros += spent.final_cost_micros
        if spent.status == JobStatus.SUCCESS.value:
            group.succeeded += spent.jobs
        elif spent.status in (JobStatus.FAILED.value, JobStatus.EXPIRED.value):
            group.failed += spent.jobs
    for job in await store.job_costs(since, until):
        key = _job_key(job, group_by)
        group = groups.setdefault(key, Group(key))
        if job.alias and job.alias != job.model:
            group.aliases.add(job.alias)
        if job.status == JobStatus.SUCCESS.value and job.final_cost_micros is not None:
            group.costs.append(job.final_cost_micros)
    refusal_keys: list[RefusalGroupKey] = list(keys)
    for refused in await store.refusal_summary(since, until, refusal_keys):
        key = _row_key(refused, group_by)
        group = groups.setdefault(key, Group(key))
        group.refusals += refused.refusals
        group.avoided_micros += refused.avoided_micros
    rows: list[dict[str, Any]] = []
    for key in sorted(groups, key=lambda k: tuple((v is None, v or "") for v in k)):
        g = groups[key]
        p50, p95 = percentile(g.costs, 0.5), percentile(g.costs, 0.95)
        row: dict[str, Any] = dict(zip(group_by, key, strict=True))
        row.update(
            jobs=g.jobs,
            succeeded=g.succeeded,
            failed=g.failed,
            estimated_usd=money.exact(g.estimated_micros),
            spend_usd=money.exact(g.spend_micros),
            cost_per_job_p50_usd=None if p50 is None else money.exact(p50),
            cost_per_job_p95_usd=None if p95 is None else money.exact(p95),
            refused=g.refusals,
            refused_savings_usd=money.exact(g.avoided_micros),
            aliases=";".join(sorted(g.aliases)) or None,  # how clients named the pinned model
        )
        rows.append(row)
    return rows


def to_csv(rows: Sequence[dict[str, Any]], group_by: Sequence[str]) -> str:
    columns = [*group_by, *COLUMNS]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
    return out.getvalue()


def to_json(
    rows: Sequence[dict[str, Any]],
    since: float,
    until: float,
    group_by: Sequence[str],
    unexplained: Sequence[dict[str, Any]] = (),
) -> str:
    total = sum(money.parse(r["spend_usd"]) for r in rows)
    doc = {"since": since, "until": until, "group_by": list(group_by), "rows": list(rows),
           "total_spend_usd": money.exact(total)}  # fmt: skip
    if unexplained:  # only where balance reconciliation runs
        doc["unexplained_spend"] = list(unexplained)
    return json.dumps(doc, indent=2)


async def unexplained_spend(store: Store) -> list[dict[str, Any]]:
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
