"""Prometheus recording and alert rules for the proxy, as data.

Recording rules follow ``level:metric:operations``; dashboards read some of them. Every alert
gets ``severity``, ``summary``, ``description`` and a ``runbook_url`` pointing at its anchor in
``docs/runbooks.md`` (the lower-cased alert name, as GitHub renders ``## AlertName``).
"""

from __future__ import annotations

from typing import Any

P = "modellix_proxy"
SCRAPE_JOB = "modellix-proxy"
RUNBOOK_BASE = "https://github.com/modellix/modellix-proxy/blob/main/docs/runbooks.md"

#: Upstream outcome classes that count as the upstream's failure (4xx caused by the caller
#: are not), matched against ``modellix_proxy_upstream_requests_total{outcome}``.
UPSTREAM_ERROR_OUTCOMES = "5xx|rate_limited|timeout|connect_error|reset"
#: Terminal job statuses that spend the job-success error budget.
FAILED_STATUSES = "failed|expired"
JOB_SLO = 0.98
BUDGET_WARN_RATIO = 0.9
COST_P95_WOW_RATIO = 1.25
MIN_JOBS_PER_WINDOW = 20
UNKNOWN_WINDOW = "15m"
#: Balance drops not in the ledger, per team, over this window, that page finance.
UNEXPLAINED_USD = 1.0
UNEXPLAINED_WINDOW = "1h"
#: A team's oldest queued submit waiting longer than this: its admission queue does not drain.
ADMISSION_STUCK_SECONDS = 900
BURN_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
#: (severity, for, long window, short window, burn factor), as in kubernetes-mixin.
BURN_TIERS = (
    ("critical", "2m", "1h", "5m", 14.4),
    ("critical", "15m", "6h", "30m", 6.0),
    ("warning", "1h", "1d", "2h", 3.0),
    ("warning", "3h", "3d", "6h", 1.0),
)

BY_BUDGET = "budget, scope, window"
FAILURE_RATIO = "job:modellix_proxy_job_failure:ratio_rate{w}"
UPSTREAM_ERROR_RATIO = "job_operation:modellix_proxy_upstream_errors:ratio_rate5m"
RETRY_RATIO = "job_operation:modellix_proxy_upstream_retries:ratio_rate5m"
BUDGET_USED = "budget:modellix_proxy_budget_used:ratio"
BUDGET_REMAINING = "budget:modellix_proxy_budget_remaining:usd"
#: A hard budget refuses a job that does not fit what is left: spend stops short of the limit
#: (e.g. $2.916 of $3 at $0.324 a job). Refusals within this window also mean "exhausted".
BUDGET_REFUSAL_WINDOW = "5m"
BUDGET_SPEND_RATE = "budget:modellix_proxy_budget_spent_usd:deriv6h"
BUDGET_EXHAUSTION = "budget:modellix_proxy_budget_exhaustion:seconds"
COST_P50 = "model:modellix_proxy_job_cost_usd:p50_rate1d"
COST_P95 = "model:modellix_proxy_job_cost_usd:p95_rate1d"
COST_P95_WOW = "model:modellix_proxy_job_cost_usd:p95_wow_ratio"

Rule = dict[str, Any]


def _ratio(by: str, metric: str, bad: str, window: str) -> str:
    """Bad/all rate ratio that is 0 (not absent) while no bad series exist yet."""
    total = f"sum by ({by}) (rate({metric}[{window}]))"
    return f"(sum by ({by}) (rate({metric}{{{bad}}}[{window}])) or {total} * 0)\n/\n{total}"


def _cost_quantile(q: str, offset: str = "") -> str:
    """The ledger's exact quantile (``p50``, ``p95``) of the last day's job costs, per model."""
    return f"max by (model) ({P}_ledger_job_cost_{q}_usd{offset})"


def budget_exhausted() -> str:
    """Budgets that cannot take the next job: used up, less left than the cheapest typical
    job, or refusing submits (402) within the last few minutes."""
    cheapest = f"on () group_left () min({P}_price_smallest_job_usd)"
    refusals, w = f"{P}_budget_refusals_total", BUDGET_REFUSAL_WINDOW
    # A budget's first refusal creates its series at 1, which increase() cannot see.
    refusing = (
        f"sum by (budget, scope) (increase({refusals}[{w}])) > 0\n"
        f"or sum by (budget, scope) ({refusals} unless {refusals} offset {w}) > 0"
    )
    return (
        f"{BUDGET_USED} >= 1\n"
        f"or {BUDGET_USED} and on ({BY_BUDGET}) ({BUDGET_REMAINING} < {cheapest})\n"
        f"or {BUDGET_USED} and on (budget, scope) ({refusing})"
    )


def recording_rules() -> list[Rule]:
    """Recording rules shared by alerts and dashboards."""
    rules: list[Rule] = [
        {
            "record": FAILURE_RATIO.format(w=w),
            "expr": _ratio("job", f"{P}_jobs_terminal_total", f'status=~"{FAILED_STATUSES}"', w),
        }
        for w in BURN_WINDOWS
    ]
    upstream = f"{P}_upstream_requests_total"
    rules += [
        {
            "record": UPSTREAM_ERROR_RATIO,
            "expr": _ratio(
                "job, operation", upstream, f'outcome=~"{UPSTREAM_ERROR_OUTCOMES}"', "5m"
            ),
        },
        {
            "record": RETRY_RATIO,
            "expr": f"sum by (job, operation) (rate({P}_upstream_retries_total[5m]))\n/\n"
            f"sum by (job, operation) (rate({upstream}[5m]))",
        },
        {
            "record": BUDGET_USED,
            "expr": f"(max by ({BY_BUDGET}) ({P}_budget_spent_usd)\n"
            f" + on ({BY_BUDGET}) (max by ({BY_BUDGET}) ({P}_budget_reserved_usd)"
            f" or max by ({BY_BUDGET}) ({P}_budget_spent_usd) * 0))\n"
            f"/ on ({BY_BUDGET}) max by ({BY_BUDGET}) ({P}_budget_limit_usd > 0)",
        },
        {
            "record": BUDGET_REMAINING,
            "expr": f"max by ({BY_BUDGET}) ({P}_budget_limit_usd > 0)\n"
            f" - on ({BY_BUDGET}) max by ({BY_BUDGET}) ({P}_budget_spent_usd)\n"
            f" - on ({BY_BUDGET}) (max by ({BY_BUDGET}) ({P}_budget_reserved_usd)"
            f" or max by ({BY_BUDGET}) ({P}_budget_spent_usd) * 0)",
        },
        {
            "record": BUDGET_SPEND_RATE,
            "expr": f"max by ({BY_BUDGET}) (deriv({P}_budget_spent_usd[6h]))",
        },
        {
            "record": BUDGET_EXHAUSTION,
            "expr": f"max by ({BY_BUDGET}) ({P}_budget_limit_usd > 0)\n"
            f"* on ({BY_BUDGET}) clamp_min(1 - {BUDGET_USED}, 0)\n"
            f"/ on ({BY_BUDGET}) ({BUDGET_SPEND_RATE} > 0)",
        },
        {"record": COST_P50, "expr": _cost_quantile("p50")},
        {"record": COST_P95, "expr": _cost_quantile("p95")},
        {
            "record": COST_P95_WOW,
            "expr": f"{COST_P95}\n/ on (model)\n{_cost_quantile('p95', ' offset 1w')}",
        },
    ]
    return rules


def _alert(
    name: str,
    expr: str,
    for_: str,
    severity: str,
    summary: str,
    description: str,
    extra_labels: dict[str, str] | None = None,
) -> Rule:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, **(extra_labels or {})},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{RUNBOOK_BASE}#{name.lower()}",
        },
    }


def _burn_alerts() -> list[Rule]:
    alerts = []
    for severity, for_, long, short, factor in BURN_TIERS:
        threshold = round(factor * (1 - JOB_SLO), 6)
        expr = (
            f"{FAILURE_RATIO.format(w=long)} > {threshold}\n"
            f"and {FAILURE_RATIO.format(w=short)} > {threshold}\n"
            f"and on (job) sum by (job) (increase({P}_jobs_terminal_total[{long}]))"
            f" >= {MIN_JOBS_PER_WINDOW}"
        )
        alerts.append(
            _alert(
                "ModellixProxyJobErrorBudgetBurn",
                expr,
                for_,
                severity,
                "Jobs are failing fast enough to burn the job-success error budget.",
                f"{{{{ $value | humanizePercentage }}}} of jobs failed over the last {long} "
                f"(burn rate {factor} against a {JOB_SLO:.0%} success objective).",
                {"long": long, "short": short},
            )
        )
    return alerts


def _outcome_alerts() -> list[Rule]:
    """Jobs the watcher cannot poll, submits of unknown outcome, money they keep reserved."""
    unknown = f"{P}_submit_outcome_unknown_total"
    # A model's first unknown outcome creates its series at 1: increase() cannot see that
    # step, so series that did not exist 15m ago count with their value.
    new_unknown = f"sum by (job) ({unknown} unless {unknown} offset {UNKNOWN_WINDOW})"
    return [
        _alert(
            "ModellixProxyJobsWithoutCredential",
            f"max by (job) ({P}_jobs_without_credential) > 0",
            "10m",
            "warning",
            "Open jobs cannot be polled by the watcher: it holds no upstream key for them.",
            "{{ $value }} open jobs have no usable upstream key on a replica (pass-through mode "
            "after a restart, no upstream.api_key): they move only when their clients poll.",
        ),
        _alert(
            "ModellixProxySubmitOutcomesUnknown",
            f"(sum by (job) (increase({unknown}[{UNKNOWN_WINDOW}])) > 0)\nor ({new_unknown} > 0)",
            "0m",
            "warning",
            "Paid submits were sent upstream and their outcome is unknown.",
            f'{{{{ $value | printf "%.0f" }}}} submits in the last {UNKNOWN_WINDOW} got no '
            "usable answer after "
            "being sent: a task may exist upstream. Their budget reservations are kept until an "
            "operator reconciles them.",
        ),
        _alert(
            "ModellixProxyUnknownOutcomesHoldBudget",
            f"max by (job) ({P}_unknown_reserved_usd) > 0",
            "1h",
            "warning",
            "Jobs of unknown outcome have held budget money for over an hour.",
            '${{ $value | printf "%.2f" }} of budget is reserved by unknown-outcome jobs '
            "nobody has reconciled; it is not available to new submits.",
        ),
    ]


def alert_rules() -> list[Rule]:
    """Alerts for on-call and finance."""
    budget = "{{ $labels.budget }} ({{ $labels.scope }}, {{ $labels.window }})"
    up = f'up{{job="{SCRAPE_JOB}"}}'
    return [
        _alert(
            "ModellixProxyBudgetNearlyExhausted",
            f"{BUDGET_USED} >= {BUDGET_WARN_RATIO}\nunless on ({BY_BUDGET}) ({budget_exhausted()})",
            "5m",
            "warning",
            "A budget is nearly exhausted.",
            f"Budget {budget} is {{{{ $value | humanizePercentage }}}} used (spent plus reserved).",
        ),
        _alert(
            "ModellixProxyBudgetExhausted",
            budget_exhausted(),
            "1m",
            "critical",
            "A budget is exhausted and new paid jobs under it are refused.",
            f"Budget {budget} is {{{{ $value | humanizePercentage }}}} used and cannot take the "
            "next job; submits under it get 402.",
        ),
        _alert(
            "ModellixProxyBudgetForecastExhaustion",
            f"{BUDGET_EXHAUSTION} < 86400\nunless on ({BY_BUDGET}) ({budget_exhausted()})",
            "30m",
            "warning",
            "A budget is forecast to run out within a day.",
            f"At the spend rate of the last 6h, budget {budget} runs out in "
            "{{ $value | humanizeDuration }}.",
        ),
        _alert(
            "ModellixProxyJobCostP95Rising",
            f"{COST_P95_WOW} > {COST_P95_WOW_RATIO}\n"
            f"and on (model) max by (model) ({P}_ledger_costed_jobs) >= {MIN_JOBS_PER_WINDOW}",
            "1h",
            "warning",
            "The 95th percentile cost per job rose sharply week over week.",
            "P95 cost per job of model {{ $labels.model }} over the last day is "
            '{{ $value | printf "%.2f" }} times the same day last week.',
        ),
        _alert(
            "ModellixProxyPriceDrift",
            f"sum by (model) (increase({P}_charge_outside_estimate_total[30m])) > 0",
            "0m",
            "warning",
            "The upstream charged a model outside the proxy's estimate range (a stale price).",
            '{{ $value | printf "%.0f" }} jobs of model {{ $labels.model }} were charged '
            "outside their estimate's range over the last 30m: the price the proxy estimates "
            "with (operator table or upstream list) no longer matches what Modellix bills.",
        ),
        *_burn_alerts(),
        _alert(
            "ModellixProxyUpstreamErrorRatioHigh",
            f"{UPSTREAM_ERROR_RATIO} > 0.05\n"
            f"and on (job, operation) sum by (job, operation) "
            f"(rate({P}_upstream_requests_total[5m])) > 0.05",
            "10m",
            "warning",
            "The Modellix API is failing a large share of the proxy's requests.",
            "{{ $value | humanizePercentage }} of upstream {{ $labels.operation }} attempts "
            "failed (5xx, 429, timeouts, connect errors) over 5m.",
        ),
        _alert(
            "ModellixProxyJobsStuck",
            f"max by (job) ({P}_jobs_stale) > 0",
            "15m",
            "warning",
            "Jobs are past their expected time and not yet terminal.",
            "{{ $value }} jobs were polled 12 times or more without reaching a terminal state.",
        ),
        _alert(
            "ModellixProxyRetryStorm",
            f"{RETRY_RATIO} > 0.25\n"
            f"and on (job, operation) sum by (job, operation) "
            f"(rate({P}_upstream_retries_total[5m])) > 0.1",
            "10m",
            "warning",
            "The proxy is retrying a large share of upstream attempts.",
            "{{ $value | humanizePercentage }} of upstream {{ $labels.operation }} attempts "
            "are retries over 5m.",
        ),
        _alert(
            "ModellixProxyWatcherBacklog",
            f"max by (job) ({P}_watcher_lag_seconds) > 120\n"
            f"and on (job) max by (job) ({P}_watcher_backlog_jobs) > 0",
            "10m",
            "warning",
            "The job watcher is falling behind its polling schedule.",
            "The most overdue job is {{ $value | humanizeDuration }} behind its poll schedule.",
        ),
        *_outcome_alerts(),
        *_settlement_alerts(),
        *_admission_alerts(),
        *_schema_alerts(),
        _alert(
            "ModellixProxyDown",
            f"{up} == 0",
            "2m",
            "critical",
            "The proxy is not answering Prometheus scrapes.",
            "Target {{ $labels.instance }} of job {{ $labels.job }} has failed scrapes for 2m.",
        ),
        _alert(
            "ModellixProxyTargetMissing",
            f"absent({up})",
            "5m",
            "critical",
            "Prometheus has no proxy target to scrape.",
            f'No series up{{job="{SCRAPE_JOB}"}} exists: service discovery or the scrape '
            "configuration lost the proxy.",
        ),
    ]


def _settlement_alerts() -> list[Rule]:
    """Completion webhooks that could not be delivered; spend the ledger does not explain."""
    return [
        _alert(
            "ModellixProxyWebhookDeadLetters",
            f'sum by (job) (increase({P}_webhook_attempts_total{{outcome="dead"}}[1h])) > 0',
            "0m",
            "warning",
            "Completion webhooks were dead-lettered after their last retry.",
            "{{ $value | humanize }} deliveries were given up in the last hour; their receivers "
            "never answered 2xx.",
        ),
        _alert(
            "ModellixProxyUnexplainedSpend",
            f"max by (team) (\n  {P}_unexplained_spend_usd\n  - ({P}_unexplained_spend_usd "
            f"offset {UNEXPLAINED_WINDOW} or {P}_unexplained_spend_usd * 0)\n) > {UNEXPLAINED_USD}",
            "15m",
            "warning",
            "The upstream balance fell by more than the ledger explains.",
            "Team {{ $labels.team }}: ${{ $value | humanize }} left the upstream balance in the "
            f"last {UNEXPLAINED_WINDOW} without a job in the proxy's ledger.",
        ),
    ]


def _admission_alerts() -> list[Rule]:
    """An admission queue that does not drain."""
    return [
        _alert(
            "ModellixProxyAdmissionQueueStuck",
            f"max by (team) ({P}_admission_oldest_wait_seconds) > {ADMISSION_STUCK_SECONDS}",
            "5m",
            "warning",
            "A team's admission queue is not draining.",
            "Team {{ $labels.team }}: the oldest queued submit has waited "
            "{{ $value | humanizeDuration }} for a free upstream slot.",
        ),
    ]


def _schema_alerts() -> list[Rule]:
    """A published schema changed upstream and waits for an operator (policy hold)."""
    return [
        _alert(
            "ModellixProxySchemaChangeWaiting",
            f"max by (model) ({P}_schema_change_waiting) > 0",
            "30m",
            "warning",
            "A model's published schema changed; the proxy still validates with the pinned one.",
            "Model {{ $labels.model }}: the upstream publishes a new request schema; review it "
            "(GET /admin/schemas/{{ $labels.model }}) and accept it.",
        ),
    ]


def rule_files() -> dict[str, dict[str, Any]]:
    """The rule files to write under ``rules/``, keyed by file name.

    One group: its rules run in order, so alerts read recording rules of the same evaluation
    (across groups the order is unspecified and alert values would lag by one interval).
    """
    rules = recording_rules() + alert_rules()
    return {"modellix-proxy.yml": {"groups": [{"name": "modellix-proxy", "rules": rules}]}}
