"""The Finance dashboard: spend, budgets, cost per job and money saved by refusals."""

from __future__ import annotations

from dashboards import prometheus_rules as r
from dashboards.grafana_model import Json, Layout, Panel, Query, dashboard, label_variable

P = r.P
FILTER = 'team=~"$team", project=~"$project", model=~"$model"'
#: Every replica exports the same ledger sums: take one per series, never add replicas up.
ONE = "max by (team, project, model)"
ONE_REFUSAL = "max by (team, project, model, reason)"
SPEND = f"{P}_spend_usd_total{{{FILTER}}}"
UNPRICED = f'{P}_unpriced_jobs_total{{model=~"$model"}}'
ACCOUNT_SPEND = f'{P}_account_spend_usd_total{{account=~"$account"}}'
BUDGET_PCT = ((0.8, "yellow"), (0.9, "orange"), (1.0, "red"))
#: The model variable lists every model with jobs or refusals, priced or not.
MODEL_SOURCES = f'{{__name__=~"{P}_(ledger_jobs|ledger_refused_savings_usd|unpriced_jobs_total)"}}'


def ledger(window: str, offset: str = "") -> str:
    """Settled spend of the window's jobs, one series per team, project and model."""
    return f'{ONE} ({P}_ledger_spend_usd{{window="{window}", {FILTER}}}{offset})'


def refused(window: str) -> str:
    """Estimated cost of the window's refused submits, one series per group and reason."""
    return f'{ONE_REFUSAL} ({P}_ledger_refused_savings_usd{{window="{window}", {FILTER}}})'


def in_range(by: str = "") -> str:
    """Ledger spend over the dashboard's range: the running total now minus at range start.

    A series that did not exist at the start counts whole (it had no spend then).
    """
    group = f" by ({by})" if by else ""
    now = f"sum{group} ({ledger('total')})"
    before = f"sum{group} ({ledger('total', ' offset $__range')})"
    if by:
        return f"({now} - {before}) or {now}"
    return f"{now} - ({before} or vector(0))"


def _stat(title: str, description: str, expr: str) -> Panel:
    return Panel(
        "stat",
        title,
        description,
        "currencyUSD",
        (Query(expr, "spend", instant=True),),
        width=8 if "spend" in title.lower() else 12,
        height=5,
    )


def _spend_by(label: str, title: str, window: str) -> Panel:
    when = "today" if window == "day" else "this month"
    return Panel(
        "bargauge",
        title,
        f"Settled spend per {label} of jobs submitted {when}, from the ledger (the report's "
        "figures).",
        "currencyUSD",
        (
            Query(
                f"sort_desc(sum by ({label}) ({ledger(window)}))", f"{{{{{label}}}}}", instant=True
            ),
        ),
        width=8,
        height=8,
    )


def _cost_quantile(q: str) -> str:
    return f'max by (model) ({P}_ledger_job_cost_{q}_usd{{model=~"$model"}})'


def build() -> Json:
    """Build the Finance dashboard."""
    lay = Layout()
    lay.row("Spend")
    lay.add(
        _stat(
            "Spend today",
            "Settled spend of jobs submitted since midnight (governance.timezone), from the "
            "ledger: equals the spend report for today.",
            f"sum({ledger('day')})",
        )
    )
    lay.add(
        _stat(
            "Spend month to date",
            "Settled spend of jobs submitted since the 1st (governance.timezone), from the ledger.",
            f"sum({ledger('month')})",
        )
    )
    lay.add(
        _stat(
            "Spend in range",
            "Settled spend over the dashboard's range: the ledger's running total at the end of "
            "the range minus the same at its start.",
            in_range(),
        )
    )
    lay.add(
        _stat(
            "Saved by refused inputs today",
            "Estimated cost of submits refused today before any upstream call, from the ledger.",
            f"sum({refused('day')})",
        )
    )
    lay.add(
        _stat(
            "Saved by refused inputs month to date",
            "Estimated cost of submits refused this month before any upstream call, from the "
            "ledger.",
            f"sum({refused('month')})",
        )
    )
    lay.add(_spend_by("team", "Spend today by team", "day"))
    lay.add(_spend_by("project", "Spend today by project", "day"))
    lay.add(_spend_by("model", "Spend today by model", "day"))
    lay.add(_spend_by("team", "Month to date by team", "month"))
    lay.add(_spend_by("project", "Month to date by project", "month"))
    lay.add(_spend_by("model", "Month to date by model", "month"))
    lay.add(
        Panel(
            "timeseries",
            "Spend rate by model (USD per hour)",
            "Settled spend per hour by model, and estimated spend of accepted submits.",
            "currencyUSD",
            (
                Query(f"sum by (model) (rate({SPEND}[$__rate_interval])) * 3600", "{{model}}"),
                Query(
                    f"sum(rate({P}_estimated_spend_usd_total{{{FILTER}}}"
                    f"[$__rate_interval])) * 3600",
                    "estimated (all models)",
                ),
            ),
            width=12,
        )
    )
    lay.add(
        Panel(
            "table",
            "Top cost drivers",
            "The ten team, project and model combinations with most settled spend in range "
            "(from the ledger).",
            "currencyUSD",
            (Query(f"topk(10, {in_range('team, project, model')})", "", instant=True, table=True),),
            width=12,
        )
    )
    lay.row("Where costs come from")
    for window, title in (("day", "today"), ("month", "month to date")):
        lay.add(
            Panel(
                "bargauge",
                f"Spend {title} by price source",
                "Settled spend by where each job's cost came from: charge (what Modellix "
                "itself billed, data.billing.amount), upstream_list or operator (an estimate "
                "from the model list's display price or the operator's pricing.models), "
                "unpriced. Not filtered by team, project or model.",
                "currencyUSD",
                (
                    Query(
                        f'max by (source) ({P}_ledger_spend_by_source_usd{{window="{window}"}})',
                        "{{source}}",
                        instant=True,
                    ),
                ),
                width=8,
            )
        )
    lay.add(
        Panel(
            "timeseries",
            "Charges outside the estimate (per hour)",
            "Jobs the upstream charged outside the proxy's estimate range, by model and "
            "direction: a stale price (ModellixProxyPriceDrift).",
            "short",
            (
                Query(
                    f"sum by (model, direction) (rate({P}_charge_outside_estimate_total"
                    f'{{model=~"$model"}}[$__rate_interval])) * 3600',
                    "{{model}} {{direction}}",
                ),
            ),
            width=8,
        )
    )
    lay.row("Modellix accounts")
    lay.add(
        Panel(
            "bargauge",
            "Spend in range by Modellix account",
            "Settled spend over the dashboard's range per Modellix account billed "
            "(upstream.accounts; passthrough: the callers' own keys). Not filtered by team, "
            "project or model.",
            "currencyUSD",
            (
                Query(
                    f"sort_desc(sum by (account) (increase({ACCOUNT_SPEND}[$__range])))",
                    "{{account}}",
                    instant=True,
                ),
            ),
            width=12,
        )
    )
    lay.add(
        Panel(
            "timeseries",
            "Spend per hour by Modellix account",
            "Settled spend per hour per Modellix account billed.",
            "currencyUSD",
            (
                Query(
                    f"sum by (account) (rate({ACCOUNT_SPEND}[$__rate_interval])) * 3600",
                    "{{account}}",
                ),
            ),
            width=12,
        )
    )
    lay.row("Budgets")
    lay.add(
        Panel(
            "bargauge",
            "Budget used",
            "Spent plus reserved over the limit, per budget, scope and window (100%: refused).",
            "percentunit",
            (
                Query(
                    f"sort_desc({r.BUDGET_USED})", "{{budget}} {{scope}} {{window}}", instant=True
                ),
            ),
            width=8,
            thresholds=BUDGET_PCT,
            min_value=0,
        )
    )
    lay.add(
        Panel(
            "bargauge",
            "Forecast: time until budget runs out",
            "Remaining budget over the spend rate of the last 6 hours; absent when not growing.",
            "s",
            (
                Query(
                    f"sort({r.BUDGET_EXHAUSTION})", "{{budget}} {{scope}} {{window}}", instant=True
                ),
            ),
            width=8,
        )
    )
    lay.add(
        Panel(
            "timeseries",
            "Budget burn and forecast",
            "Spent per budget, its limit, and a linear forecast of spend 24 hours ahead.",
            "currencyUSD",
            (
                Query(f"max by ({r.BY_BUDGET}) ({P}_budget_spent_usd)", "{{budget}} spent"),
                Query(f"max by ({r.BY_BUDGET}) ({P}_budget_limit_usd)", "{{budget}} limit"),
                Query(
                    f"max by ({r.BY_BUDGET}) (predict_linear({P}_budget_spent_usd[6h], 86400))",
                    "{{budget}} forecast +24h",
                ),
            ),
            width=8,
        )
    )
    lay.row("Cost per job")
    lay.add(
        Panel(
            "timeseries",
            "Cost per job P50 and P95 by model",
            "Exact quantiles (nearest rank) of successful jobs' final cost over the last 24 "
            "hours, from the ledger.",
            "currencyUSD",
            (
                Query(_cost_quantile("p50"), "{{model}} P50"),
                Query(_cost_quantile("p95"), "{{model}} P95"),
            ),
            width=8,
        )
    )
    lay.add(
        Panel(
            "timeseries",
            "Cost per job P95: last day vs same day last week",
            "P95 cost per job over a sliding day, and the same a week earlier (weekly drift).",
            "currencyUSD",
            (
                Query(f'{r.COST_P95}{{model=~"$model"}}', "{{model}} this week"),
                Query(f'{r.COST_P95}{{model=~"$model"}} offset 1w', "{{model}} last week"),
            ),
            width=8,
        )
    )
    lay.add(
        Panel(
            "timeseries",
            "Cost per job P95 week over week",
            "Ratio of this week's daily P95 cost per job to last week's; alerts above "
            f"{r.COST_P95_WOW_RATIO:.0%}.",
            "percentunit",
            (Query(f'{r.COST_P95_WOW}{{model=~"$model"}}', "{{model}}"),),
            width=8,
            thresholds=((r.COST_P95_WOW_RATIO, "red"),),
        )
    )
    lay.row("Savings")
    lay.add(
        Panel(
            "timeseries",
            "Savings from refused inputs today by reason",
            "Estimated cost not spent today because the proxy refused invalid or disallowed "
            "submits, from the ledger (resets at midnight).",
            "currencyUSD",
            (Query(f"sum by (reason) ({refused('day')})", "{{reason}}"),),
            width=12,
            stack="normal",
        )
    )
    lay.add(
        Panel(
            "timeseries",
            "Unpriced submits by model",
            "Accepted submits for models missing from the price table (their cost is not counted).",
            "ops",
            (Query(f"sum by (model) (rate({UNPRICED}[$__rate_interval]))", "{{model}}"),),
            width=12,
        )
    )
    variables = [
        label_variable("team", "Team", f"{P}_ledger_jobs"),
        label_variable("project", "Project", f"{P}_ledger_jobs"),
        label_variable("model", "Model", MODEL_SOURCES),
        label_variable("account", "Modellix account", f"{P}_account_spend_usd_total"),
    ]
    return dashboard(
        "modellix-proxy-finance",
        "Modellix proxy / Finance",
        "Spend by team, project, model and Modellix account; budgets and forecasts; cost per "
        "job; savings.",
        ["modellix-proxy", "finance"],
        variables,
        lay,
    )
