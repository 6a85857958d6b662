"""Spend export in the FinOps FOCUS 1.1 format (https://focus.finops.org): one row per job.

Each terminal job submitted in ``[since, until)`` is one ``Usage`` charge: ``ResourceId`` is
the task id, ``SkuId`` the pinned model, ``ChargePeriodStart``/``End`` the submit and terminal
times, ``SubAccountId`` the team, ``Tags`` the team, project, alias, status and correlation id.
BilledCost, EffectiveCost, ContractedCost and ListCost are all the ledger's final cost, exact
to the micro-dollar (Modellix bills list prices, with no discounts or commitments), so each
cost column sums to the ledger's spend over the same window. Jobs still open, and ``unknown``
records, are not charges yet and have no row. Columns FOCUS defines that do not apply here
(commitments, capacity reservations, regions) are present and empty; two custom columns
(``x_`` prefix, as FOCUS asks) carry the proxy's estimate and the job status.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from proxy import money
from proxy.stores.base import JobStore
from proxy.stores.records import JobRecord

FOCUS_VERSION = "1.1"
PAGE = 1000
COST_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
COLUMNS = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "CapacityReservationId",
    "CapacityReservationStatus",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
    "x_EstimatedCost",
    "x_JobStatus",
)


def iso(ts: float) -> str:
    """FOCUS date-time: ISO 8601 in UTC with a ``Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(ts: float) -> tuple[str, str]:
    """The calendar month (UTC) holding ``ts``: inclusive start, exclusive end."""
    at = datetime.fromtimestamp(ts, UTC)
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")


def focus_row(job: JobRecord) -> dict[str, Any]:
    """One FOCUS charge for a terminal ``job``; money as exact six-place decimal strings."""
    cost = money.exact(job.final_cost_micros or 0)
    end = job.terminal_at if job.terminal_at is not None else job.submitted_at
    period_start, period_end = _month(job.submitted_at)
    publisher = job.pinned_slug.split("/", 1)[0] if "/" in job.pinned_slug else None
    tags = {
        k: v
        for k, v in {
            "team": job.team,
            "project": job.project,
            "model_alias": job.alias,
            "status": job.status.value,
            "correlation_id": job.correlation_id,
        }.items()
        if v is not None
    }
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        BilledCost=cost,
        BillingAccountId="modellix",
        BillingAccountName="Modellix",
        BillingAccountType="Team",
        BillingCurrency="USD",
        BillingPeriodStart=period_start,
        BillingPeriodEnd=period_end,
        ChargeCategory="Usage",
        ChargeDescription=f"{job.pinned_slug} media generation task ({job.status.value})",
        ChargeFrequency="Usage-Based",
        ChargePeriodStart=iso(job.submitted_at),
        ChargePeriodEnd=iso(max(end, job.submitted_at + 1)),
        ConsumedQuantity="1",
        ConsumedUnit="Task",
        ContractedCost=cost,
        ContractedUnitPrice=cost,
        EffectiveCost=cost,
        InvoiceIssuerName="Modellix",
        ListCost=cost,
        ListUnitPrice=cost,
        PricingCategory="Standard",
        PricingQuantity="1",
        PricingUnit="Task",
        ProviderName="Modellix",
        PublisherName=publisher,
        ResourceId=job.task_id,
        ResourceName=job.alias or job.pinned_slug,
        ResourceType="Media generation task",
        ServiceCategory="AI and Machine Learning",
        ServiceName="Modellix",
        ServiceSubcategory="Generative AI",
        SkuId=job.pinned_slug,
        SkuMeter="Task",
        SkuPriceId=f"{job.price_table_version}:{job.pinned_slug}"
        if job.price_table_version
        else None,
        SubAccountId=job.team,
        SubAccountName=job.team,
        SubAccountType="Team" if job.team else None,
        Tags=json.dumps(tags, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
        x_EstimatedCost=None
        if job.estimated_cost_micros is None
        else money.exact(job.estimated_cost_micros),
        x_JobStatus=job.status.value,
    )
    return row


async def build(store: JobStore, since: float, until: float) -> list[dict[str, Any]]:
    """FOCUS rows of the terminal jobs submitted in ``[since, until)``, oldest first."""
    jobs: list[JobRecord] = []
    cursor: str | None = None
    while True:  # pages of PAGE jobs, newest first; ends when the store has no more
        page = await store.list_jobs(since=since, until=until, limit=PAGE, after=cursor)
        jobs.extend(j for j in page.jobs if j.terminal)
        cursor = page.next_cursor
        if cursor is None:
            break
    jobs.sort(key=lambda j: (j.submitted_at, j.task_id))
    return [focus_row(j) for j in jobs]


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
    return out.getvalue()


def to_json(rows: Sequence[dict[str, Any]], since: float, until: float) -> str:
    doc = {"focus_version": FOCUS_VERSION, "since": since, "until": until, "rows": list(rows)}
    return json.dumps(doc, indent=2, ensure_ascii=False)
