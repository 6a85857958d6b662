"""The Operations dashboard: proxy RED, jobs, upstream, refusals and the watcher."""

from __future__ import annotations

from dashboards import prometheus_rules as r
from dashboards.grafana_model import Json, Layout, Panel, Query, dashboard, label_variable

P = r.P
RI = "[$__rate_interval]"
M = 'model=~"$model"'
#: Series that carry a team label (jobs submitted and terminal) filter by team too.
MT = f'{M}, team=~"$team"'


def _rate(metric: str, by: str, selector: str = "") -> str:
    sel = f"{{{selector}}}" if selector else ""
    grouping = f"by ({by}) " if by else ""
    return f"sum {grouping}(rate({metric}{sel}{RI}))"


def _quantile(q: float, metric: str, by: str, selector: str = "") -> str:
    sel = f"{{{selector}}}" if selector else ""
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{sel}{RI})))"


def _ts(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    width: int = 12,
    stack: str | None = None,
    thresholds: tuple[tuple[float, str], ...] = (),
) -> Panel:
    return Panel(
        "timeseries",
        title,
        description,
        unit,
        queries,
        width=width,
        stack=stack,
        thresholds=thresholds,
    )


def build() -> Json:
    """Build the Operations dashboard."""
    lay = Layout()
    lay.row("Proxy (rate, errors, duration)")
    lay.add(
        Panel(
            "stat",
            "Proxy targets up",
            "Scrape targets of the proxy that answered the last scrape.",
            "short",
            (Query(f'sum(up{{job="{r.SCRAPE_JOB}"}})', "up", instant=True),),
            width=4,
            thresholds=((1, "green"),),
        )
    )
    lay.add(
        _ts(
            "Request rate by route and code",
            "Requests answered by the proxy.",
            "reqps",
            Query(_rate(f"{P}_http_requests_total", "route, code"), "{{route}} {{code}}"),
            width=10,
        )
    )
    lay.add(
        _ts(
            "Error ratio (5xx) by route",
            "Share of responses with a 5xx status.",
            "percentunit",
            Query(
                _rate(f"{P}_http_requests_total", "route", 'code=~"5.."')
                + "\n/\n"
                + _rate(f"{P}_http_requests_total", "route"),
                "{{route}}",
            ),
            width=10,
        )
    )
    lay.add(
        _ts(
            "Proxy overhead P50/P95/P99",
            "Time the proxy itself adds to a request (total minus upstream time).",
            "s",
            *(
                Query(_quantile(q, f"{P}_overhead_seconds", "route"), f"{{{{route}}}} P{n}")
                for q, n in ((0.5, 50), (0.95, 95), (0.99, 99))
            ),
        )
    )
    lay.add(
        _ts(
            "Request duration P95 by route",
            "End-to-end handling time of the proxy's responses, including upstream.",
            "s",
            Query(_quantile(0.95, f"{P}_http_request_duration_seconds", "route"), "{{route}}"),
        )
    )
    lay.row("Jobs")
    lay.add(
        _ts(
            "Jobs in flight by model",
            "Jobs submitted and not yet terminal.",
            "short",
            Query(f"sum by (model) ({P}_jobs_in_flight{{{M}}})", "{{model}}"),
            width=8,
            stack="normal",
        )
    )
    lay.add(
        _ts(
            "Jobs submitted by model",
            "Paid submits accepted by the upstream.",
            "ops",
            Query(_rate(f"{P}_jobs_submitted_total", "model", MT), "{{model}}"),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Jobs submitted by API door",
            "The same submits by the API they came through: modellix (/api/v1/...) or"
            " openai (/v1/videos).",
            "ops",
            Query(_rate(f"{P}_jobs_by_api_total", "api", M), "{{api}}"),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Terminal status mix",
            "Share of jobs reaching each terminal status.",
            "percentunit",
            Query(
                f"{_rate(f'{P}_jobs_terminal_total', 'status', MT)}\n/ ignoring (status)"
                f" group_left\n{_rate(f'{P}_jobs_terminal_total', '', MT)}",
                "{{status}}",
            ),
            width=8,
            stack="normal",
        )
    )
    lay.add(
        _ts(
            "Time to terminal P50/P95 by model",
            "Wall-clock time from submit to the terminal state, successful jobs.",
            "s",
            Query(
                _quantile(
                    0.5, f"{P}_job_time_to_terminal_seconds", "model", f'{M}, status="success"'
                ),
                "{{model}} P50",
            ),
            Query(
                _quantile(
                    0.95, f"{P}_job_time_to_terminal_seconds", "model", f'{M}, status="success"'
                ),
                "{{model}} P95",
            ),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Queue time P95 by model",
            "Time from submit until first seen processing.",
            "s",
            Query(_quantile(0.95, f"{P}_job_queue_seconds", "model", M), "{{model}}"),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Job failure ratio (burn-rate windows)",
            "Failed or expired share of terminal jobs over the burn-rate windows; the "
            f"objective is {r.JOB_SLO:.0%} success.",
            "percentunit",
            *(Query(r.FAILURE_RATIO.format(w=w), f"{w}") for w in ("5m", "1h", "6h")),
            width=8,
            thresholds=((1 - r.JOB_SLO, "red"),),
        )
    )
    lay.row("Upstream")
    lay.add(
        _ts(
            "Upstream attempts by operation and outcome",
            "Attempts sent to the Modellix API, by operation and outcome class.",
            "reqps",
            Query(
                _rate(f"{P}_upstream_requests_total", "operation, outcome"),
                "{{operation}} {{outcome}}",
            ),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Upstream errors by class",
            "Failed upstream attempts, by outcome class.",
            "reqps",
            Query(
                _rate(
                    f"{P}_upstream_requests_total",
                    "outcome",
                    f'outcome=~"{r.UPSTREAM_ERROR_OUTCOMES}"',
                ),
                "{{outcome}}",
            ),
            width=8,
            stack="normal",
        )
    )
    lay.add(
        _ts(
            "Upstream latency P95 by operation",
            "Time of one upstream attempt until response headers.",
            "s",
            Query(
                _quantile(0.95, f"{P}_upstream_request_duration_seconds", "operation"),
                "{{operation}}",
            ),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Retries by reason",
            "Upstream attempts repeated by the proxy.",
            "ops",
            Query(
                _rate(f"{P}_upstream_retries_total", "operation, reason"),
                "{{operation}} {{reason}}",
            ),
            width=8,
            stack="normal",
        )
    )
    lay.add(
        _ts(
            "Unknown outcomes and statuses",
            "Submits with unknown outcome (sent, no answer) and undocumented task statuses.",
            "ops",
            Query(
                _rate(f"{P}_submit_outcome_unknown_total", "model", M), "submit unknown {{model}}"
            ),
            Query(
                _rate(f"{P}_upstream_unknown_status_total", "model", M), "unknown status {{model}}"
            ),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Task polls by source",
            "Polls sent upstream, by client or watcher.",
            "reqps",
            Query(_rate(f"{P}_job_polls_total", "source"), "{{source}}"),
            width=8,
        )
    )
    lay.row("Refusals and idempotency")
    lay.add(
        _ts(
            "Rejections by reason",
            "Submits refused before any upstream call.",
            "ops",
            Query(_rate(f"{P}_rejections_total", "reason", M), "{{reason}}"),
            width=8,
            stack="normal",
        )
    )
    lay.add(
        _ts(
            "Budget refusals by budget",
            "Submits refused by a hard budget.",
            "ops",
            Query(_rate(f"{P}_budget_refusals_total", "budget, scope"), "{{budget}} {{scope}}"),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Idempotent replays and conflicts",
            "Submits answered from the idempotency store, and those refused by it.",
            "ops",
            Query(_rate(f"{P}_idempotent_replays_total", ""), "replays"),
            Query(_rate(f"{P}_idempotency_conflicts_total", "kind"), "conflict {{kind}}"),
            width=8,
        )
    )
    lay.row("Watcher")
    lay.add(
        _ts(
            "Watcher backlog",
            "Jobs due for a watcher poll and not yet polled.",
            "short",
            Query(f"max({P}_watcher_backlog_jobs)", "backlog"),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Watcher lag",
            "How far behind its schedule the most overdue job is.",
            "s",
            Query(f"max({P}_watcher_lag_seconds)", "lag"),
            width=8,
            thresholds=((120, "red"),),
        )
    )
    lay.add(
        _ts(
            "Stale jobs",
            "Jobs past their expected time, not yet terminal.",
            "short",
            Query(f"max({P}_jobs_stale)", "stale"),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Jobs without a watcher credential",
            "Open jobs a replica's watcher holds no upstream key for (pass-through mode after a "
            "restart, no upstream.api_key): they move only when their clients poll.",
            "short",
            Query(f"max by (instance) ({P}_jobs_without_credential)", "{{instance}}"),
            width=8,
            thresholds=((1, "orange"),),
        )
    )
    lay.row("Unknown outcomes and retention")
    lay.add(
        _ts(
            "Unknown-outcome jobs",
            "Jobs whose submit was sent with no usable answer, not yet reconciled by an operator "
            "(GET /admin/jobs?status=unknown).",
            "short",
            Query(f"max({P}_unknown_jobs)", "unknown jobs"),
            width=8,
            thresholds=((1, "orange"),),
        )
    )
    lay.add(
        _ts(
            "Budget held by unknown outcomes",
            "Budget money the reservations of unknown-outcome jobs hold until an operator "
            "reconciles them (POST /admin/jobs/{task_id}/reconcile) or they expire.",
            "currencyUSD",
            Query(f"max({P}_unknown_reserved_usd)", "reserved"),
            width=8,
            thresholds=((0.01, "orange"),),
        )
    )
    lay.add(
        _ts(
            "Retention: rows purged",
            "Rows deleted by retention rounds (one replica at a time), by table; and seconds "
            "since the last successful round on any replica.",
            "short",
            Query(_rate(f"{P}_retention_purged_rows_total", "table"), "{{table}} rows/s"),
            Query(
                f"time() - max({P}_retention_last_success_timestamp_seconds > 0)",
                "seconds since last round",
            ),
            width=8,
        )
    )
    lay.row("Completion webhooks and balance reconciliation")
    lay.add(
        _ts(
            "Webhook attempts by outcome",
            "Completion webhook POSTs: delivered (2xx), failed (retried with backoff) and dead "
            "(given up after webhooks.max_attempts; "
            "POST /admin/webhooks/deliveries/{id}/redeliver).",
            "reqps",
            Query(_rate(f"{P}_webhook_attempts_total", "outcome"), "{{outcome}}"),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Webhook latency and delay P95",
            "P95 of one POST to a receiver, and of the time from a job turning terminal to its "
            "webhook being delivered (retries included).",
            "s",
            Query(_quantile(0.95, f"{P}_webhook_latency_seconds", "outcome"), "POST {{outcome}}"),
            Query(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate({P}_webhook_delivery_delay_seconds_bucket{RI})))",
                "terminal to delivered",
            ),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Unexplained spend by team",
            "Upstream balance drops the ledger does not explain, summed since the first reading "
            "(spend through another path: a key used directly, a lost job). Top-ups are not "
            "counted; GET /admin/balance shows the readings.",
            "currencyUSD",
            Query(f"max by (team) ({P}_unexplained_spend_usd)", "{{team}}"),
            Query(f"max by (team) ({P}_balance_topups_usd)", "{{team}} top-ups"),
            width=8,
            thresholds=((1, "orange"),),
        )
    )
    lay.row("Admission queue")
    lay.add(
        _ts(
            "Queued submits by team",
            "Submits waiting in the admission queue for a free upstream slot of their team "
            "(admission.concurrency), and submits queued per second.",
            "short",
            Query(f'max by (team) ({P}_admission_queue_depth{{team=~"$team"}})', "{{team}}"),
            Query(
                _rate(f"{P}_admission_queued_total", "team", 'team=~"$team"'),
                "{{team}} queued/s",
            ),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Queue wait: oldest and P95",
            "How long the oldest queued submit of each team has waited (alert "
            "ModellixProxyAdmissionQueueStuck past 15 min), and P95 of queue to dispatch.",
            "s",
            Query(
                f'max by (team) ({P}_admission_oldest_wait_seconds{{team=~"$team"}})',
                "{{team}} oldest",
            ),
            Query(
                _quantile(0.95, f"{P}_admission_wait_seconds", "outcome", 'outcome="submitted"'),
                "P95 queue to dispatch",
            ),
            width=8,
            thresholds=((900, "orange"),),
        )
    )
    lay.add(
        _ts(
            "Dispatches by outcome",
            "Queued submits leaving the queue: submitted upstream, requeued (the upstream's 429), "
            "refused (a definite upstream refusal), unknown (no usable answer), expired "
            "(admission.max_wait_seconds), cancelled (DELETE).",
            "reqps",
            Query(_rate(f"{P}_admission_dispatches_total", "outcome"), "{{outcome}}"),
            width=8,
        )
    )
    lay.add(
        _ts(
            "Upstream tasks in flight by Modellix account",
            "Each account's tasks in flight through the proxy (virtual-key jobs not yet "
            "terminal, sends under way) against its concurrency (upstream.accounts; 0: not "
            "limited by the proxy). The admission queue holds submits beyond it.",
            "short",
            Query(f"max by (account) ({P}_account_in_flight)", "{{account}}"),
            Query(f"max by (account) ({P}_account_concurrency)", "{{account}} limit"),
            width=8,
        )
    )
    variables = [
        label_variable("team", "Team", f"{P}_jobs_submitted_total"),
        label_variable("model", "Model", f"{P}_jobs_submitted_total"),
    ]
    return dashboard(
        "modellix-proxy-operations",
        "Modellix proxy / Operations",
        "Proxy RED, job lifecycle, upstream health, refusals, idempotency and the watcher.",
        ["modellix-proxy", "operations"],
        variables,
        lay,
    )
