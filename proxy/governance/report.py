"""The spend report: by day, team, project and model, as CSV or JSON.

For each group: jobs, successes and failures, estimated and settled spend, cost
per successful job at P50 and P95, and the refusals (with the estimated cost
they avoided). Totals equal the ledger's, to the micro-dollar.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from proxy.stores.base import Store
from proxy.stores.records import GROUP_KEYS, GroupKey, JobCost, JobStatus, RefusalRow

REPORT_KEYS: tuple[GroupKey, ...] = tuple(k for k in GROUP_KEYS if k != "status")
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


def percentile(values: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile (``q`` in 0..1) of integer micro-dollars."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _job_key(job: JobCost, group_by: Sequence[GroupKey]) -> tuple[str | None, ...]:
    values: dict[str, str | None] = {
        "day": _day(job.submitted_at), "team": job.team, "project": job.project, "model": job.model,
    }  # fmt: skip
    return tuple(values[k] for k in group_by)


def _refusal_key(row: RefusalRow, group_by: Sequence[GroupKey]) -> tuple[str | None, ...]:
    values: dict[str, str | None] = {
        "day": row.day, "team": row.team, "project": row.project, "model": row.model,
    }  # fmt: skip
    return tuple(values[k] for k in group_by)


async def build(
    store: Store, since: float, until: float, group_by: Sequence[GroupKey]
) -> list[dict[str, Any]]:
    """One row per group, sorted by group key; money in US dollars (exact to the micro)."""
    groups: dict[tuple[str | None, ...], Group] = {}
    for job in await store.job_costs(since, until):
        group = groups.setdefault(_job_key(job, group_by), Group(_job_key(job, group_by)))
        group.jobs += 1
        group.estimated_micros += job.estimated_cost_micros or 0
        group.spend_micros += job.final_cost_micros or 0
        if job.status == JobStatus.SUCCESS.value:
            group.succeeded += 1
            if job.final_cost_micros is not None:
                group.costs.append(job.final_cost_micros)
        elif job.status in (JobStatus.FAILED.value, JobStatus.EXPIRED.value):
            group.failed += 1
    for refused in await store.refusal_summary(since, until, list(group_by)):
        key = _refusal_key(refused, group_by)
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
            estimated_usd=_usd(g.estimated_micros),
            spend_usd=_usd(g.spend_micros),
            cost_per_job_p50_usd=None if p50 is None else _usd(p50),
            cost_per_job_p95_usd=None if p95 is None else _usd(p95),
            refused=g.refusals,
            refused_savings_usd=_usd(g.avoided_micros),
        )
        rows.append(row)
    return rows


def _usd(micros: int) -> str:
    """Dollars as an exact decimal string (never a float)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"{sign}{whole}.{frac:06d}"


def to_csv(rows: Sequence[dict[str, Any]], group_by: Sequence[str]) -> str:
    columns = [*group_by, *COLUMNS]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
    return out.getvalue()


def _micros(text: str) -> int:
    whole, _, frac = text.lstrip("-").partition(".")
    value = int(whole) * 1_000_000 + int((frac + "000000")[:6])
    return -value if text.startswith("-") else value


def to_json(
    rows: Sequence[dict[str, Any]], since: float, until: float, group_by: Sequence[str]
) -> str:
    total = sum(_micros(r["spend_usd"]) for r in rows)
    doc = {"since": since, "until": until, "group_by": list(group_by), "rows": list(rows),
           "total_spend_usd": _usd(total)}  # fmt: skip
    return json.dumps(doc, indent=2)


def parse_group_by(raw: str, allowed: Sequence[GroupKey] = REPORT_KEYS) -> list[GroupKey]:
    """``day,team,model`` as group keys; ``ValueError`` names the allowed ones."""
    keys: list[GroupKey] = []
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        match = next((key for key in allowed if key == part), None)
        if match is None:
            raise ValueError(f"group_by takes {', '.join(allowed)}; got {part!r}")
        keys.append(match)
    return keys
