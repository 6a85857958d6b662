"""The FOCUS export against the requirements of the FOCUS version it states (1.1).

The requirements checked are written below as data, taken from the FinOps Foundation's
FOCUS Specification v1.1 (https://focus.finops.org/focus-specification/v1-1/, section
"Columns": each column's feature level, nullability, data type and allowed values; section
"Attributes": currency codes, date/time format, numeric format, custom column prefix). The
rows are read back from a real store (SQLite and PostgreSQL), as the export reads them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal

import pycountry

from proxy.governance import focus
from proxy.stores import Store
from tests.stores.helpers import T0, new_job

SPEC = "FOCUS Specification v1.1, FinOps Foundation, https://focus.finops.org/focus-specification/v1-1/"

#: Columns whose feature level is Mandatory in FOCUS 1.1: present in every dataset.
MANDATORY = frozenset(
    {
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
        "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
        "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
        "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit",
        "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
    }
)  # fmt: skip
#: Every other column FOCUS 1.1 defines (Recommended or Conditional): a column a dataset
#: carries must be one of FOCUS's or a custom column prefixed ``x_``.
DEFINED = MANDATORY | frozenset(
    {
        "AvailabilityZone", "BillingAccountType", "CapacityReservationId",
        "CapacityReservationStatus", "ChargeFrequency", "CommitmentDiscountCategory",
        "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountQuantity",
        "CommitmentDiscountStatus", "CommitmentDiscountType", "CommitmentDiscountUnit",
        "ConsumedQuantity", "ConsumedUnit", "ContractedUnitPrice", "InvoiceId",
        "ListUnitPrice", "PricingCategory", "RegionId", "RegionName", "ResourceId",
        "ResourceName", "ResourceType", "ServiceSubcategory", "SkuId", "SkuMeter",
        "SkuPriceDetails", "SkuPriceId", "SubAccountId", "SubAccountName", "SubAccountType",
        "Tags",
    }
)  # fmt: skip
CUSTOM_PREFIX = "x_"
#: Columns that allow no null (empty) value.
NOT_NULL = frozenset(
    {
        "BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd",
        "BillingPeriodStart", "ChargeCategory", "ChargePeriodEnd", "ChargePeriodStart",
        "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost", "ProviderName",
        "PublisherName", "ServiceCategory", "ServiceName",
    }
)  # fmt: skip
#: Allowed values (a null is allowed where the column is nullable).
ALLOWED: dict[str, frozenset[str]] = {
    "ChargeCategory": frozenset({"Adjustment", "Credit", "Purchase", "Tax", "Usage"}),
    "ChargeClass": frozenset({"Correction"}),
    "ChargeFrequency": frozenset({"One-Time", "Recurring", "Usage-Based"}),
    "PricingCategory": frozenset({"Committed", "Dynamic", "Other", "Standard"}),
    "CommitmentDiscountCategory": frozenset({"Spend", "Usage"}),
    "CommitmentDiscountStatus": frozenset({"Used", "Unused"}),
    "CapacityReservationStatus": frozenset({"Used", "Unused"}),
    "ServiceCategory": frozenset(
        {
            "AI and Machine Learning", "Analytics", "Business Applications", "Compute",
            "Databases", "Developer Tools", "Multicloud", "Identity", "Integration",
            "Internet of Things", "Management and Governance", "Media", "Migration", "Mobile",
            "Networking", "Security", "Storage", "Web", "Other",
        }
    ),
}  # fmt: skip
#: ServiceSubcategory values allowed under the category the export uses.
AI_SUBCATEGORIES = frozenset(
    {
        "Bots", "Generative AI", "Machine Learning", "Natural Language Processing",
        "Other (AI and Machine Learning)",
    }
)  # fmt: skip
#: Decimal columns (numeric format: no exponent, no thousands separator, ``.`` decimal mark).
DECIMAL = (
    "BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "ContractedUnitPrice",
    "ListUnitPrice", "PricingQuantity", "ConsumedQuantity", "CommitmentDiscountQuantity",
)  # fmt: skip
#: Date/time columns: ISO 8601 in UTC, ``YYYY-MM-DDTHH:mm:ssZ``.
DATES = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def conformance_problems(rows: list[dict[str, str]], header: tuple[str, ...]) -> list[str]:
    """Each way ``rows`` (CSV: the empty string is null) break the FOCUS 1.1 requirements."""
    problems = [f"missing mandatory column {c}" for c in sorted(MANDATORY - set(header))]
    problems += [
        f"column {c} is neither FOCUS 1.1 nor prefixed {CUSTOM_PREFIX}"
        for c in header
        if c not in DEFINED and not c.startswith(CUSTOM_PREFIX)
    ]
    for i, row in enumerate(rows):
        where = f"row {i} ({row.get('ResourceId')})"
        problems += [f"{where}: {c} is null" for c in sorted(NOT_NULL) if not row.get(c)]
        for column, allowed in ALLOWED.items():
            if row.get(column) and row[column] not in allowed:
                problems.append(f"{where}: {column} {row[column]!r} is not an allowed value")
        if row.get("ServiceSubcategory") and row["ServiceSubcategory"] not in AI_SUBCATEGORIES:
            problems.append(f"{where}: ServiceSubcategory not under AI and Machine Learning")
        for column in DECIMAL:
            value = row.get(column)
            if value and not NUMBER.match(value):
                problems.append(f"{where}: {column} {value!r} is not a decimal")
        for column in DATES:
            if row.get(column) and not ISO_UTC.match(row[column]):
                problems.append(f"{where}: {column} {row[column]!r} is not ISO 8601 UTC")
        if pycountry.currencies.get(alpha_3=row.get("BillingCurrency", "")) is None:
            problems.append(f"{where}: BillingCurrency is not an ISO 4217 code")
        if not row["ChargePeriodStart"] < row["ChargePeriodEnd"]:
            problems.append(f"{where}: the charge period is empty")
        if not row["BillingPeriodStart"] <= row["ChargePeriodStart"] < row["BillingPeriodEnd"]:
            problems.append(f"{where}: the charge is outside its billing period")
        if row.get("Tags"):
            try:
                tags = json.loads(row["Tags"])
            except ValueError:
                tags = None
            if not isinstance(tags, dict):
                problems.append(f"{where}: Tags is not a JSON object")
    return problems


NAMES = {"studio": 'Studio, "Modellix" team 1', "agency": "agency"}


async def _export(store: Store) -> tuple[tuple[str, ...], list[dict[str, str]]]:
    for i, (account, status, cost) in enumerate(
        [("studio", "success", 324_000), ("agency", "failed", 0), (None, "success", 1_250_000),
         ("studio", "expired", None), ("agency", "success", 7)]
    ):  # fmt: skip
        caller = "fp:3b1f" if account is None else f"vk:key{i}"
        job = new_job(f"focus/{i}", account=account, caller=caller, submitted_at=T0 + i)
        await store.insert_job(job)
        await store.observe(f"focus/{i}", status, T0 + 90 + i, final_cost_micros=cost)
    chunks = [c async for c in focus.csv_chunks(store, 0, T0 + 1000, names=NAMES)]
    reader = csv.DictReader(io.StringIO(b"".join(chunks).decode()))
    rows = list(reader)
    return tuple(reader.fieldnames or ()), rows


async def test_the_export_meets_the_focus_version_it_states(store: Store) -> None:
    """Every FOCUS 1.1 requirement written above holds for an export read from the store."""
    assert focus.FOCUS_VERSION == "1.1"
    header, rows = await _export(store)
    assert header == focus.COLUMNS
    assert len(rows) == 5
    assert conformance_problems(rows, header) == [], SPEC
    by_id = {r["ResourceId"]: r for r in rows}
    assert (by_id["focus/0"]["BillingAccountId"], by_id["focus/0"]["BillingAccountName"]) == (
        "studio",
        NAMES["studio"],
    )
    # The database's CSV (the accounts' names rendered in SQL) is the Python formatter's row.
    pages = [page async for page in store.ledger_pages(0, T0 + 1000)]
    python = [focus.focus_values(job, NAMES) for page in pages for job in page]
    assert [list(r.values()) for r in rows] == [["" if v is None else v for v in p] for p in python]
    assert by_id["focus/2"]["BillingAccountId"] == "fp:3b1f"  # pass-through: the caller's key
    assert by_id["focus/2"]["BillingAccountName"] == focus.PASSTHROUGH_ACCOUNT_NAME
    assert {r["SubAccountId"] for r in rows} == {"growth"}
    for row in rows:
        for column in focus.COST_COLUMNS:
            Decimal(row[column])  # exact decimal strings, six places
            assert len(row[column].split(".")[1]) == 6


def test_the_checker_finds_what_breaks_the_requirements() -> None:
    """A missing column, a null, a disallowed value, a float, a local time and a bad
    currency are each reported."""
    good = {
        **dict.fromkeys(focus.COLUMNS, ""),
        **{c: "1.000000" for c in focus.COST_COLUMNS},
        "BillingAccountId": "studio", "BillingCurrency": "USD",
        "BillingPeriodStart": "2026-12-01T00:00:00Z", "BillingPeriodEnd": "2027-01-01T00:00:00Z",
        "ChargePeriodStart": "2026-12-06T10:00:00Z", "ChargePeriodEnd": "2026-12-06T10:01:00Z",
        "ChargeCategory": "Usage", "InvoiceIssuerName": "Modellix", "ProviderName": "Modellix",
        "PublisherName": "minimax", "ServiceCategory": "AI and Machine Learning",
        "ServiceName": "Modellix",
    }  # fmt: skip
    assert conformance_problems([good], focus.COLUMNS) == []
    bad = {
        **good,
        "BillingAccountId": "",
        "ChargeCategory": "Subscription",
        "BilledCost": "1e-3",
        "ChargePeriodStart": "2026-12-06 10:00:00+01:00",
        "BillingCurrency": "USX",
    }
    header = (*(c for c in focus.COLUMNS if c != "ServiceName"), "Extra")
    found = " | ".join(conformance_problems([bad], header))
    for needle in (
        "missing mandatory column ServiceName", "Extra is neither", "BillingAccountId is null",
        "'Subscription' is not an allowed value", "'1e-3' is not a decimal",
        "is not ISO 8601 UTC", "not an ISO 4217 code",
    ):  # fmt: skip
        assert needle in found, needle
