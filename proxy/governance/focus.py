"""Spend export in the FinOps FOCUS 1.1 format (https://focus.finops.org): one row per job.

Each terminal job submitted in ``[since, until)`` is one ``Usage`` charge: ``ResourceId`` is
the task id, ``SkuId`` the pinned model, ``ChargePeriodStart``/``End`` the submit and terminal
times, ``Tags`` the team, project, alias, status, correlation id and the API door (``api``:
``modellix`` or ``openai``). The billing account is the Modellix account the job billed to
(``ACCOUNT_COLUMNS``): ``BillingAccountId`` its name in ``upstream.accounts`` (``default``:
``upstream.api_key``), ``BillingAccountName`` its ``display_name``; a pass-through job (the
caller's own key) names the caller's key fingerprint. ``SubAccountId``/``SubAccountName``
are the proxy team.
BilledCost, EffectiveCost, ContractedCost and ListCost are all the ledger's final cost, exact
to the micro-dollar (Modellix bills list prices, with no discounts or commitments), so each
cost column sums to the ledger's spend over the same window. Jobs still open, and ``unknown``
records, are not charges yet and have no row. Columns FOCUS defines that do not apply here
(commitments, capacity reservations, regions) are present and empty; two custom columns
(``x_`` prefix, as FOCUS asks) carry the proxy's estimate and the job status; four more say
where the cost came from: ``x_CostSource`` (``charge``: the upstream's own billing amount, or
``estimate``), ``x_PriceSource`` (``operator``, ``upstream_list`` or ``unpriced``) and the
estimate's range (``x_EstimatedCostMin``/``x_EstimatedCostMax``).

Each column is declared twice, side by side: ``focus_values`` computes a job's row in Python
(the JSON and NDJSON forms), ``SQL_FIELDS`` says how the database computes the same text
(``proxy.stores.sql_text``) for the CSV form, which the database formats whole; a test holds
the two equal (tests/stores/test_ledger_csv.py). A column that changes changes in both.
The accounts' display names are configuration, so both take them as a mapping (``names``;
``sql_fields(names)``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

import orjson

from proxy import money
from proxy.governance import streaming
from proxy.stores.base import LedgerReadStore
from proxy.stores.records import LedgerRow
from proxy.stores.sql_text import (
    Before,
    Col,
    Concat,
    Const,
    Expr,
    FirstText,
    Instant,
    JsonObject,
    Money,
    MonthEnd,
    MonthStart,
    Named,
    WhenText,
)

FOCUS_VERSION = "1.1"
VERSION_HEADER = "X-Modellix-Proxy-Focus-Version"  # on every export answer: FOCUS_VERSION
PASSTHROUGH_ACCOUNT_NAME = "Caller's own Modellix key"
# Where the account columns come from, as data: FOCUS column -> the ledger column (``jobs``).
ACCOUNT_COLUMNS = {
    "BillingAccountId": "account",  # empty (pass-through): the caller, "fp:<fingerprint>"
    "BillingAccountName": "account",  # through the accounts' display names
    "SubAccountId": "team",
    "SubAccountName": "team",
}
AccountNames = Mapping[str, str]
NO_NAMES: AccountNames = {}
PAGE = 1000
CSV_PAGE = 2000
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
    "x_CostSource",
    "x_PriceSource",
    "x_EstimatedCostMin",
    "x_EstimatedCostMax",
)


def iso(ts: float) -> str:
    """FOCUS date-time: ISO 8601 in UTC with a ``Z``, the whole second (as in SQL)."""
    return datetime.fromtimestamp(math.floor(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=64)
def _month_of_day(day: int) -> tuple[str, str]:
    at = datetime.fromtimestamp(day * 86400, UTC)
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(ts: float) -> tuple[str, str]:
    """The calendar month (UTC) holding ``ts``: inclusive start, exclusive end."""
    return _month_of_day(int(ts // 86400))


_CONSTANTS = {
    "BillingAccountType": "Team",
    "BillingCurrency": "USD",
    "ChargeCategory": "Usage",
    "ChargeFrequency": "Usage-Based",
    "ConsumedQuantity": "1",
    "ConsumedUnit": "Task",
    "InvoiceIssuerName": "Modellix",
    "PricingCategory": "Standard",
    "PricingQuantity": "1",
    "PricingUnit": "Task",
    "ProviderName": "Modellix",
    "ResourceType": "Media generation task",
    "ServiceCategory": "AI and Machine Learning",
    "ServiceName": "Modellix",
    "ServiceSubcategory": "Generative AI",
    "SkuMeter": "Task",
}
_AT = {name: i for i, name in enumerate(COLUMNS)}
_TEMPLATE: list[str | None] = [_CONSTANTS.get(name) for name in COLUMNS]
_COSTS = tuple(_AT[c] for c in (*COST_COLUMNS, "ContractedUnitPrice", "ListUnitPrice"))
(
    _PERIOD_START, _PERIOD_END, _DESCRIPTION, _CHARGE_START, _CHARGE_END, _PUBLISHER,
    _RESOURCE_ID, _RESOURCE_NAME, _SKU, _SKU_PRICE, _SUB_ID, _SUB_NAME, _SUB_TYPE, _TAGS,
    _ESTIMATE, _STATUS, _COST_SOURCE, _PRICE_SOURCE, _LOW, _HIGH, _ACCOUNT_ID, _ACCOUNT_NAME,
) = (
    _AT[c] for c in (
        "BillingPeriodStart", "BillingPeriodEnd", "ChargeDescription", "ChargePeriodStart",
        "ChargePeriodEnd", "PublisherName", "ResourceId", "ResourceName", "SkuId",
        "SkuPriceId", "SubAccountId", "SubAccountName", "SubAccountType", "Tags",
        "x_EstimatedCost", "x_JobStatus", "x_CostSource", "x_PriceSource",
        "x_EstimatedCostMin", "x_EstimatedCostMax", "BillingAccountId", "BillingAccountName",
    )
)  # fmt: skip


def billing_account(job: LedgerRow, names: AccountNames = NO_NAMES) -> tuple[str | None, str]:
    """``(BillingAccountId, BillingAccountName)`` of ``job``: its Modellix account and that
    account's display name (``names``, else the account's name); a pass-through job's caller."""
    if job.account:
        return job.account, names.get(job.account, job.account)
    return job.caller or None, PASSTHROUGH_ACCOUNT_NAME


def focus_values(job: LedgerRow, names: AccountNames = NO_NAMES) -> list[str | None]:
    """One FOCUS charge for a terminal ``job``, as values in ``COLUMNS`` order; money as
    exact six-place decimal strings; ``names``: the accounts' display names."""
    values = _TEMPLATE.copy()
    values[_ACCOUNT_ID], values[_ACCOUNT_NAME] = billing_account(job, names)
    cost = money.exact(job.final_cost_micros or 0)
    for at in _COSTS:
        values[at] = cost
    status = job.status.value
    slug = job.pinned_slug
    end = job.terminal_at if job.terminal_at is not None else job.submitted_at
    values[_PERIOD_START], values[_PERIOD_END] = _month(job.submitted_at)
    values[_DESCRIPTION] = f"{slug} media generation task ({status})"
    values[_CHARGE_START] = iso(job.submitted_at)
    values[_CHARGE_END] = iso(max(end, job.submitted_at + 1))
    values[_PUBLISHER] = slug.split("/", 1)[0] if "/" in slug else None
    values[_RESOURCE_ID] = job.task_id
    values[_RESOURCE_NAME] = job.alias or slug
    values[_SKU] = slug
    if job.price_table_version:
        values[_SKU_PRICE] = f"{job.price_table_version}:{slug}"
    values[_SUB_ID] = values[_SUB_NAME] = job.team
    values[_SUB_TYPE] = "Team" if job.team else None
    tags = {
        "api": job.api,
        "correlation_id": job.correlation_id,
        "model_alias": job.alias,
        "project": job.project,
        "status": status,
        "team": job.team,
    }  # sorted by key
    values[_TAGS] = orjson.dumps({k: v for k, v in tags.items() if v is not None}).decode()
    if job.estimated_cost_micros is not None:
        values[_ESTIMATE] = money.exact(job.estimated_cost_micros)
    values[_STATUS] = status
    values[_COST_SOURCE] = job.cost_source
    values[_PRICE_SOURCE] = job.price_source
    if job.estimate_low_micros is not None:
        values[_LOW] = money.exact(job.estimate_low_micros)
    if job.estimate_high_micros is not None:
        values[_HIGH] = money.exact(job.estimate_high_micros)
    return values


_SLUG, _STATUS_COL, _TEAM = Col("pinned_slug"), Col("status"), Col("team")
_FINAL = Money("final_cost_micros", default=0)
_FROM_JOBS: dict[str, Expr] = {
    **{name: _FINAL for name in (*COST_COLUMNS, "ContractedUnitPrice", "ListUnitPrice")},
    "BillingPeriodStart": MonthStart("submitted_at"),
    "BillingPeriodEnd": MonthEnd("submitted_at"),
    "ChargeDescription": Concat(
        (_SLUG, Const(" media generation task ("), _STATUS_COL, Const(")"))
    ),
    "ChargePeriodStart": Instant("submitted_at"),
    "ChargePeriodEnd": Instant("{greatest}(COALESCE(terminal_at, submitted_at), submitted_at + 1)"),
    "PublisherName": Before(_SLUG, "/"),
    "ResourceId": Col("task_id"),
    "ResourceName": FirstText(Col("alias"), _SLUG),
    "SkuId": _SLUG,
    "SkuPriceId": WhenText(
        Col("price_table_version"), Concat((Col("price_table_version"), Const(":"), _SLUG))
    ),
    "SubAccountId": _TEAM,
    "SubAccountName": _TEAM,
    "SubAccountType": WhenText(_TEAM, Const("Team")),
    "Tags": JsonObject(
        (
            ("api", FirstText(Col("api"), Const("modellix"))),
            ("correlation_id", Col("correlation_id")),
            ("model_alias", Col("alias")),
            ("project", Col("project")),
            ("status", _STATUS_COL),
            ("team", _TEAM),
        )
    ),
    "x_EstimatedCost": Money("estimated_cost_micros"),
    "x_JobStatus": _STATUS_COL,
    "x_CostSource": Col("cost_source"),
    "x_PriceSource": Col("price_source"),
    "x_EstimatedCostMin": Money("estimate_low_micros"),
    "x_EstimatedCostMax": Money("estimate_high_micros"),
}


def sql_fields(names: AccountNames = NO_NAMES) -> tuple[Expr, ...]:
    """Each column of ``COLUMNS`` as text the database makes from the job's row: what
    ``focus_values`` computes in Python, declared once for both engines (``csv_chunks``)."""
    account = Col("account")
    by_job: dict[str, Expr] = {
        **_FROM_JOBS,
        "BillingAccountId": FirstText(account, Col("caller")),
        "BillingAccountName": Named(
            account, tuple(sorted(names.items())), Const(PASSTHROUGH_ACCOUNT_NAME)
        ),
    }
    return tuple(by_job.get(name) or Const(_CONSTANTS.get(name)) for name in COLUMNS)


SQL_FIELDS: tuple[Expr, ...] = sql_fields()
"""``sql_fields`` without display names (each account named by its name)."""


def focus_row(job: LedgerRow, names: AccountNames = NO_NAMES) -> dict[str, Any]:
    """One FOCUS charge for a terminal ``job`` as a mapping of ``COLUMNS``."""
    return dict(zip(COLUMNS, focus_values(job, names), strict=True))


async def csv_chunks(
    store: LedgerReadStore,
    since: float,
    until: float,
    page_size: int = CSV_PAGE,
    names: AccountNames = NO_NAMES,
) -> AsyncGenerator[bytes, None]:
    """The FOCUS rows of the terminal jobs submitted in ``[since, until)``, oldest first,
    as CSV: the header, then lines the database formatted (``sql_fields(names)``), in
    bounded chunks. The header goes out with the first chunk, so a store that cannot answer
    is still an ordinary error answer."""
    head: bytes | None = streaming.csv_header(COLUMNS)
    fields = sql_fields(names) if names else SQL_FIELDS
    async with aclosing(store.ledger_csv(since, until, fields, page_size)) as lines:
        async for chunk in lines:  # closed with this one (a COPY holds its connection)
            if head is not None:
                chunk, head = head + chunk, None
            yield chunk
    if head is not None:
        yield head


def json_chunks(
    store: LedgerReadStore,
    since: float,
    until: float,
    page_size: int = PAGE,
    names: AccountNames = NO_NAMES,
) -> AsyncIterator[bytes]:
    """The same rows in one JSON document (``focus_version``, ``since``, ``until``, ``rows``)."""
    head = {"focus_version": FOCUS_VERSION, "since": since, "until": until}
    pages = store.ledger_pages(since, until, page_size)
    return streaming.json_chunks(head, "rows", pages, doc=partial(focus_row, names=names))


def ndjson_chunks(
    store: LedgerReadStore,
    since: float,
    until: float,
    page_size: int = PAGE,
    names: AccountNames = NO_NAMES,
) -> AsyncIterator[bytes]:
    """The same rows, one JSON object per line."""
    pages = store.ledger_pages(since, until, page_size)
    return streaming.ndjson_chunks(pages, partial(focus_row, names=names))


FORMATS = {
    "csv": (streaming.CSV, csv_chunks),
    "json": (streaming.JSON, json_chunks),
    "ndjson": (streaming.NDJSON, ndjson_chunks),
}


def chunks(
    fmt: str,
    store: LedgerReadStore,
    since: float,
    until: float,
    names: AccountNames = NO_NAMES,
) -> tuple[str, AsyncIterator[bytes]]:
    """The content type and chunks of the export in ``fmt`` (``ValueError`` if unknown);
    ``names``: the accounts' display names (``BillingAccountName``)."""
    if fmt not in FORMATS:
        raise ValueError(f"format takes {', '.join(FORMATS)}; got {fmt!r}")
    content_type, make = FORMATS[fmt]
    return content_type, make(store, since, until, names=names)
