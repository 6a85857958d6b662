"""The Finance dashboard: spend, budgets, cost per job and money saved by refusals."""

from __future__ import annotations

from dashboards import prometheus_rules as r
from dashboards.grafana_model import Json, Layout, Panel, Query, dashboard, label_variable

P = r.P
SPEND = f'{P}_spend_usd_total{{team=~"$team", model=~"$model"}}'
AVOIDED = f'{P}_rejected_cost_avoided_usd_total{{model=~"$model"}}'
COST_BUCKET = f'{P}_job_cost_usd_bucket{{model=~"$model"}}'
BUDGET_PCT = ((0.8, "yellow"), (0.9, "orange"), (1.0, "red"))


def _spend_stat(title: str, description: str, time_from: str | None) -> Panel:
    return Panel(
        "stat",
        title,
        description,
        "currencyUSD",
        (Query(f"sum(increase({SPEND}[$__range]))", "spend", instant=True),),
        width=6,
        height=5,
        time_from=time_from,
    )


def _spend_by(label: str, title: str, time_from: str) -> Panel:
    return Panel(
        "bargauge",
        title,
        f"Settled spend per {label} over the panel's period (terminal jobs' final cost).",
        "currencyUSD",
        (
            Query(
                f"sort_desc(sum by ({label}) (increase({SPEND}[$__range])))",
                f"{{{{{label}}}}}",
                instant=True,
            ),
        ),
        width=8,
        height=8,
        time_from=time_from,
    )


def _cost_quantile(q: float) -> str:
    return f"histogram_quantile({q}, sum by (model, le) (rate({COST_BUCKET}[$__rate_interval])))"


def build() -> Json:
    """Build the Finance dashboard."""
    lay = Layout()
    lay.row("Spend")
    lay.add(_spend_stat("Spend today", "Settled spend since midnight UTC.", "now/d"))
    lay.add(_spend_stat("Spend month to date", "Settled spend since the 1st (UTC).", "now/M"))
    lay.add(_spend_stat("Spend in range", "Settled spend over the dashboard's range.", None))
    lay.add(
        Panel(
            "stat",
            "Saved by refused inputs",
            "Estimated cost of submits the proxy refused before any upstream call, over the range.",
            "currencyUSD",
            (Query(f"sum(increase({AVOIDED}[$__range]))", "saved", instant=True),),
            width=6,
            height=5,
        )
    )
    lay.add(_spend_by("team", "Spend today by team", "now/d"))
    lay.add(_spend_by("project", "Spend today by project", "now/d"))
    lay.add(_spend_by("model", "Spend today by model", "now/d"))
    lay.add(_spend_by("team", "Month to date by team", "now/M"))
    lay.add(_spend_by("project", "Month to date by project", "now/M"))
    lay.add(_spend_by("model", "Month to date by model", "now/M"))
    lay.add(
        Panel(
            "timeseries",
            "Spend rate by model (USD per hour)",
            "Settled spend per hour by model, and estimated spend of accepted submits.",
            "currencyUSD",
            (
                Query(f"sum by (model) (rate({SPEND}[$__rate_interval])) * 3600", "{{model}}"),
                Query(
                    f'sum(rate({P}_estimated_spend_usd_total{{team=~"$team", model=~"$model"}}'
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
            "The ten team, project and model combinations with most settled spend in range.",
            "currencyUSD",
            (
                Query(
                    f"topk(10, sum by (team, project, model) (increase({SPEND}[$__range])))",
                    "",
                    instant=True,
                    table=True,
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
            "Quantiles of the final cost of terminal jobs, from the cost histogram.",
            "currencyUSD",
            (
                Query(_cost_quantile(0.5), "{{model}} P50"),
                Query(_cost_quantile(0.95), "{{model}} P95"),
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
            "Savings from refused inputs by reason",
            "Estimated cost not spent because the proxy refused invalid or disallowed submits.",
            "currencyUSD",
            (Query(f"sum by (reason) (increase({AVOIDED}[$__rate_interval]))", "{{reason}}"),),
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
            (
                Query(
                    f'sum by (model) (rate({P}_unpriced_jobs_total{{model=~"$model"}}'
                    f"[$__rate_interval]))",
                    "{{model}}",
                ),
            ),
            width=12,
        )
    )
    variables = [
        label_variable("team", "Team", f"{P}_spend_usd_total"),
        label_variable("model", "Model", f"{P}_spend_usd_total"),
    ]
    return dashboard(
        "modellix-proxy-finance",
        "Modellix proxy / Finance",
        "Spend by team, project and model; budgets and forecasts; cost per job; savings.",
        ["modellix-proxy", "finance"],
        variables,
        lay,
    )
