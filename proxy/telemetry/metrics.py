"""Every Prometheus metric the proxy exports, in one place.

Names follow Prometheus conventions: one prefix, base units, ``_total`` on
counters, ``_usd`` for money. Labels are bounded: ``model`` is a catalog slug
or ``other``, ``team``/``project`` come from configuration or are ``other``;
task ids, keys and URLs never appear in labels (they go to exemplars, traces
and logs). Dashboards and alert rules are tested to use only these names.

With ``serve --workers N`` the workers' metrics meet in one ``/metrics``
(``proxy.telemetry.multiprocess``): a new gauge is either a :class:`SharedGauge` (a
number every worker reads from the store) or names its ``multiprocess_mode``.

The counters and histograms every forwarded request updates are :class:`LoopCounter` and
:class:`LoopHistogram` (``proxy.telemetry.loop_metrics``): updated on the event loop's
thread only, without prometheus-client's lock.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)

from proxy import money
from proxy.telemetry.loop_metrics import LoopCounter, LoopHistogram
from proxy.telemetry.multiprocess import SharedGauge

PREFIX = "modellix_proxy"

# Label names, as constants so dashboards, rules and code agree.
ROUTE = "route"
METHOD = "method"
CODE = "code"
OPERATION = "operation"
OUTCOME = "outcome"
REASON = "reason"
MODEL = "model"
API = "api"  # the API door: "modellix" (/api/v1/...) or "openai" (/v1/videos)
TEAM = "team"
ACCOUNT = "account"
PROJECT = "project"
STATUS = "status"
SCOPE = "scope"
WINDOW = "window"
BUDGET = "budget"
KIND = "kind"
SOURCE = "source"
TABLE = "table"
STATE = "state"
DIRECTION = "direction"

OTHER = "other"

# Buckets chosen so that alert/SLO thresholds fall on boundaries.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60)
TIME_TO_TERMINAL_BUCKETS = (5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 2700, 3600)
QUEUE_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
DUE_LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
COST_BUCKETS_USD = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)
# Actual charge over estimate: 1 is exact; a min/max list price or a bounded duration reads
# below 1 (the estimate is the top of its range); above 1 the estimate fell short.
CHARGE_RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0, 1.01, 1.1, 1.25, 1.5, 2, 4)


class Metrics:
    """The proxy's metrics, registered on an explicit registry (a fresh one per app)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        cost_buckets: Sequence[float] = COST_BUCKETS_USD,
    ) -> None:
        """``cost_buckets``: the job cost histogram's edges (see ``price_points``)."""
        # ``*_created`` series double the series count and no dashboard or rule reads them.
        # prometheus_client keeps this switch process-wide; it is set when metrics are built,
        # never at import.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        p = PREFIX
        # --- HTTP surface (RED) -------------------------------------------------------
        self.http_requests = LoopCounter(
            f"{p}_http_requests_total",
            "Requests the proxy answered, by route kind, method and status code.",
            [ROUTE, METHOD, CODE],
            registry=r,
        )
        self.http_protocol_errors = Counter(
            f"{p}_http_protocol_errors_total",
            "Requests that were not valid HTTP/1.1 (answered 4xx before any route), by kind.",
            ["kind"],
            registry=r,
        )
        self.admin_token_reads = Counter(
            f"{p}_admin_token_reads_total",
            "Reads of the stored admin tokens, by cause: a known token's were stale, or a"
            " token this replica did not know was presented.",
            ["cause"],
            registry=r,
        )
        self.http_duration = LoopHistogram(
            f"{p}_http_request_duration_seconds",
            "Time from receiving a request to finishing its response, by route kind.",
            [ROUTE],
            buckets=UPSTREAM_BUCKETS,
            registry=r,
        )
        self.overhead = LoopHistogram(
            f"{p}_overhead_seconds",
            "Time the proxy itself added to a request (total minus upstream time).",
            [ROUTE],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # --- upstream -----------------------------------------------------------------
        self.upstream_requests = LoopCounter(
            f"{p}_upstream_requests_total",
            "Attempts sent to the Modellix API, by operation and outcome class.",
            [OPERATION, OUTCOME],
            registry=r,
        )
        self.upstream_duration = LoopHistogram(
            f"{p}_upstream_request_duration_seconds",
            "Duration of one upstream attempt until response headers, by operation.",
            [OPERATION],
            buckets=UPSTREAM_BUCKETS,
            registry=r,
        )
        self.upstream_retries = Counter(
            f"{p}_upstream_retries_total",
            "Upstream attempts repeated by the proxy, by operation and reason.",
            [OPERATION, REASON],
            registry=r,
        )
        # --- jobs ---------------------------------------------------------------------
        self.jobs_submitted = Counter(
            f"{p}_jobs_submitted_total",
            "Paid submits accepted by the upstream (one per job), by model and team.",
            [MODEL, TEAM],
            registry=r,
        )
        self.jobs_by_api = Counter(
            f"{p}_jobs_by_api_total",
            "Paid submits accepted by the upstream, by the API door they came through"
            " (modellix: /api/v1/..., openai: /v1/videos) and model.",
            [API, MODEL],
            registry=r,
        )
        self.jobs_terminal = Counter(
            f"{p}_jobs_terminal_total",
            "Jobs that reached a final state (success, failed, expired), by model, team, status.",
            [MODEL, TEAM, STATUS],
            registry=r,
        )
        self.submit_unknown = Counter(
            f"{p}_submit_outcome_unknown_total",
            "Submits sent upstream whose outcome is unknown (sent, no answer), by model.",
            [MODEL],
            registry=r,
        )
        self.ledger_writes_pending = Gauge(
            f"{p}_ledger_writes_pending",
            "Ledger writes waiting for the store (answered already; retried until they land).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.intents_recovered = Counter(
            f"{p}_intents_recovered_total",
            "Submit intents of a replica that died mid-submit, turned into unknown records.",
            registry=r,
        )
        self.reservations_reclaimed = Counter(
            f"{p}_reservations_reclaimed_total",
            "Budget reservations and concurrency slots released because their replica died.",
            registry=r,
        )
        self.unknown_status = Counter(
            f"{p}_upstream_unknown_status_total",
            "Task statuses outside the documented four, seen from the upstream, by model.",
            [MODEL],
            registry=r,
        )
        self.jobs_in_flight = SharedGauge(
            f"{p}_jobs_in_flight",
            "Jobs submitted and not yet terminal, by model.",
            [MODEL],
            registry=r,
        )
        self.job_cost = Histogram(
            f"{p}_job_cost_usd",
            "Cost of one job at its terminal state (final cost), by model.",
            [MODEL],
            buckets=tuple(cost_buckets),
            registry=r,
        )
        self.time_to_terminal = Histogram(
            f"{p}_job_time_to_terminal_seconds",
            "Wall-clock time from submit to the terminal state seen, by model and status.",
            [MODEL, STATUS],
            buckets=TIME_TO_TERMINAL_BUCKETS,
            registry=r,
        )
        self.queue_time = Histogram(
            f"{p}_job_queue_seconds",
            "Time from submit until the job was first seen processing, by model.",
            [MODEL],
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.job_polls = LoopCounter(
            f"{p}_job_polls_total",
            "Task polls sent upstream, by who asked (client or watcher).",
            [SOURCE],
            registry=r,
        )
        # --- money --------------------------------------------------------------------
        self.spend = Counter(
            f"{p}_spend_usd_total",
            "Settled spend in US dollars (final cost of terminal jobs), by model, team, project.",
            [MODEL, TEAM, PROJECT],
            registry=r,
        )
        self.account_spend = Counter(
            f"{p}_account_spend_usd_total",
            "Settled spend in US dollars by the Modellix account billed (upstream.accounts; "
            "passthrough: the callers' own keys).",
            [ACCOUNT],
            registry=r,
        )
        self.estimated_spend = Counter(
            f"{p}_estimated_spend_usd_total",
            "Estimated cost of accepted submits in US dollars, by model, team, project.",
            [MODEL, TEAM, PROJECT],
            registry=r,
        )
        self.unpriced_jobs = Counter(
            f"{p}_unpriced_jobs_total",
            "Accepted submits for models without a price (operator table or upstream list), "
            "by model.",
            [MODEL],
            registry=r,
        )
        self.priced_jobs = Counter(
            f"{p}_priced_jobs_total",
            "Accepted submits by where their price came from (operator, upstream_list, "
            "unpriced), by model.",
            [MODEL, SOURCE],
            registry=r,
        )
        self.charged_jobs = Counter(
            f"{p}_charged_jobs_total",
            "Successful jobs whose final cost is the upstream's own charge (billing.amount), "
            "by model.",
            [MODEL],
            registry=r,
        )
        self.charge_estimate_ratio = Histogram(
            f"{p}_charge_estimate_ratio",
            "The upstream's charge divided by the proxy's estimate for one job, by model.",
            [MODEL],
            buckets=CHARGE_RATIO_BUCKETS,
            registry=r,
        )
        self.charge_outside_estimate = Counter(
            f"{p}_charge_outside_estimate_total",
            "Jobs charged outside their estimate's range (a stale price), by model and "
            "direction (above, below).",
            [MODEL, DIRECTION],
            registry=r,
        )
        # --- refusals -----------------------------------------------------------------
        self.rejections = Counter(
            f"{p}_rejections_total",
            "Submits the proxy refused before any upstream call, by reason and model.",
            [REASON, MODEL],
            registry=r,
        )
        self.rejected_cost = Counter(
            f"{p}_rejected_cost_avoided_usd_total",
            "Estimated cost of refused submits (money not spent on bad inputs), by reason, model.",
            [REASON, MODEL],
            registry=r,
        )
        self.idempotent_replays = Counter(
            f"{p}_idempotent_replays_total",
            "Submits answered from the idempotency store without an upstream call.",
            registry=r,
        )
        self.idempotency_conflicts = Counter(
            f"{p}_idempotency_conflicts_total",
            "Submits refused for idempotency (in_flight, mismatch, unknown), by kind.",
            [KIND],
            registry=r,
        )
        # --- budgets ------------------------------------------------------------------
        self.budget_limit = SharedGauge(
            f"{p}_budget_limit_usd",
            "Configured budget limit in US dollars, by budget name, scope and window.",
            [BUDGET, SCOPE, WINDOW],
            registry=r,
        )
        self.budget_spent = SharedGauge(
            f"{p}_budget_spent_usd",
            "Settled spend counted against a budget in its current window, in US dollars.",
            [BUDGET, SCOPE, WINDOW],
            registry=r,
        )
        self.budget_reserved = SharedGauge(
            f"{p}_budget_reserved_usd",
            "Estimates reserved against a budget for jobs not yet terminal, in US dollars.",
            [BUDGET, SCOPE, WINDOW],
            registry=r,
        )
        self.budget_refusals = Counter(
            f"{p}_budget_refusals_total",
            "Submits refused because a hard budget would be exceeded, by budget name and scope.",
            [BUDGET, SCOPE],
            registry=r,
        )
        self.smallest_job = SharedGauge(
            f"{p}_price_smallest_job_usd",
            "Estimated cost of the cheapest typical job in the price table (each priced model's "
            "default body); a budget with less left than this cannot take another job.",
            registry=r,
        )
        # --- the ledger, read from the store (shared numbers: every replica reports them) ---
        self.ledger_spend = SharedGauge(
            f"{p}_ledger_spend_usd",
            "Settled spend of jobs submitted in the current window (day, month; total: all "
            "retained jobs), from the store, by team, project and model.",
            [WINDOW, TEAM, PROJECT, MODEL],
            registry=r,
        )
        self.ledger_spend_by_source = SharedGauge(
            f"{p}_ledger_spend_by_source_usd",
            "Settled spend of jobs submitted in the current window (day, month), from the "
            "store, by where the cost came from: charge (the upstream's billing), "
            "upstream_list or operator (an estimate from that price), unpriced.",
            [WINDOW, SOURCE],
            registry=r,
        )
        self.ledger_jobs = SharedGauge(
            f"{p}_ledger_jobs",
            "Jobs submitted in the current window (day, month), priced or not, from the store, "
            "by team, project and model.",
            [WINDOW, TEAM, PROJECT, MODEL],
            registry=r,
        )
        self.ledger_refused_savings = SharedGauge(
            f"{p}_ledger_refused_savings_usd",
            "Estimated cost of submits refused in the current window (day, month), from the "
            "store, by team, project, model and reason.",
            [WINDOW, TEAM, PROJECT, MODEL, REASON],
            registry=r,
        )
        self.ledger_job_cost_p50 = SharedGauge(
            f"{p}_ledger_job_cost_p50_usd",
            "Exact median cost per successful job over the last 24 hours (nearest rank over "
            "the final costs in the store), by model.",
            [MODEL],
            registry=r,
        )
        self.ledger_job_cost_p95 = SharedGauge(
            f"{p}_ledger_job_cost_p95_usd",
            "Exact 95th percentile cost per successful job over the last 24 hours (nearest "
            "rank over the final costs in the store), by model.",
            [MODEL],
            registry=r,
        )
        self.ledger_costed_jobs = SharedGauge(
            f"{p}_ledger_costed_jobs",
            "Successful jobs with a final cost over the last 24 hours (the quantiles' sample).",
            [MODEL],
            registry=r,
        )
        self.ledger_refreshed = SharedGauge(
            f"{p}_ledger_refresh_timestamp_seconds",
            "When the ledger gauges were last read from the store (Unix time; 0: never).",
            registry=r,
        )
        # --- watcher ------------------------------------------------------------------
        self.watcher_backlog = SharedGauge(
            f"{p}_watcher_backlog_jobs",
            "Jobs due for a watcher poll and not yet polled.",
            registry=r,
        )
        self.watcher_lag = SharedGauge(
            f"{p}_watcher_lag_seconds",
            "How far behind its schedule the most overdue job is.",
            registry=r,
        )
        self.watcher_due_lag = Histogram(
            f"{p}_watcher_due_lag_seconds",
            "How late each watcher poll left, after the job's next_poll_at (the achieved poll "
            'rate is rate(modellix_proxy_job_polls_total{source="watcher"})).',
            buckets=DUE_LAG_BUCKETS,
            registry=r,
        )
        self.jobs_stale = SharedGauge(
            f"{p}_jobs_stale",
            "Jobs past their expected time (flagged stale by the watcher), not yet terminal.",
            registry=r,
        )
        self.jobs_without_credential = Gauge(
            f"{p}_jobs_without_credential",
            "Open jobs this replica's watcher found with no usable upstream key (pass-through "
            "mode after a restart, no upstream.api_key): not polled until a client polls them.",
            multiprocess_mode="livesum",
            registry=r,
        )
        # --- unknown outcomes -----------------------------------------------------------
        self.unknown_jobs = SharedGauge(
            f"{p}_unknown_jobs",
            "Jobs whose submit outcome is unknown and that no operator has reconciled yet.",
            registry=r,
        )
        self.unknown_reserved = SharedGauge(
            f"{p}_unknown_reserved_usd",
            "Budget money (estimates) held by reservations of unknown-outcome jobs, in US dollars.",
            registry=r,
        )
        # --- retention ----------------------------------------------------------------
        self.retention_purged = Counter(
            f"{p}_retention_purged_rows_total",
            "Rows deleted by retention rounds, by table.",
            [TABLE],
            registry=r,
        )
        self.retention_last_success = Gauge(
            f"{p}_retention_last_success_timestamp_seconds",
            "When this replica last finished a retention round (Unix time; 0: never).",
            multiprocess_mode="max",
            registry=r,
        )
        # --- completion webhooks ------------------------------------------------------
        self.webhook_attempts = Counter(
            f"{p}_webhook_attempts_total",
            "Completion webhook POST attempts, by outcome (delivered, failed, dead).",
            [OUTCOME],
            registry=r,
        )
        self.webhook_latency = Histogram(
            f"{p}_webhook_latency_seconds",
            "Time of one completion webhook POST, by outcome.",
            [OUTCOME],
            buckets=UPSTREAM_BUCKETS,
            registry=r,
        )
        self.webhook_delay = Histogram(
            f"{p}_webhook_delivery_delay_seconds",
            "From a job turning terminal to its webhook being delivered.",
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.webhook_deliveries = SharedGauge(
            f"{p}_webhook_deliveries",
            "Completion webhook deliveries in the store, by state (pending, delivered, dead).",
            [STATE],
            registry=r,
        )
        # --- balance reconciliation -----------------------------------------------------
        self.balance = Gauge(
            f"{p}_upstream_balance_usd",
            "The upstream team balance at the last reconciliation, in US dollars.",
            [TEAM],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.unexplained_spend = Gauge(
            f"{p}_unexplained_spend_usd",
            "Balance drops the ledger does not explain, summed since the first reading (USD).",
            [TEAM],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.unexplained_window = Gauge(
            f"{p}_unexplained_spend_window_usd",
            "Unexplained spend in the last reconciliation window, in US dollars.",
            [TEAM],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.balance_topups = Gauge(
            f"{p}_balance_topups_usd",
            "Balance rises (top-ups) seen since the first reading, in US dollars.",
            [TEAM],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.balance_last_success = Gauge(
            f"{p}_balance_reconcile_last_success_timestamp_seconds",
            "When a reconciliation round last succeeded (Unix time; 0: never).",
            [TEAM],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        # --- admission queue ------------------------------------------------------------
        self.admission_queued = Counter(
            f"{p}_admission_queued_total",
            "Submits queued by the admission queue (answered with a q- id), by team.",
            [TEAM],
            registry=r,
        )
        self.account_in_flight = SharedGauge(
            f"{p}_account_in_flight",
            "Upstream tasks in flight through the proxy by Modellix account (virtual-key jobs "
            "not yet terminal and sends under way: the admission count), read from the store.",
            [ACCOUNT],
            registry=r,
        )
        self.account_concurrency = SharedGauge(
            f"{p}_account_concurrency",
            "Each Modellix account's concurrency (configured, or its funding tier's); 0: not "
            "limited by the proxy.",
            [ACCOUNT],
            registry=r,
        )
        self.admission_depth = SharedGauge(
            f"{p}_admission_queue_depth",
            "Submits waiting in the admission queue, by team (written by every replica).",
            [TEAM],
            registry=r,
        )
        self.admission_oldest = SharedGauge(
            f"{p}_admission_oldest_wait_seconds",
            "How long the oldest queued submit has waited, by team (0: none queued).",
            [TEAM],
            registry=r,
        )
        self.admission_wait = Histogram(
            f"{p}_admission_wait_seconds",
            "Time from queueing to dispatch (or expiry, cancel) of a queued submit, by outcome.",
            [OUTCOME],
            buckets=(*DUE_LAG_BUCKETS, 600, 1800, 3600),
            registry=r,
        )
        self.admission_dispatches = Counter(
            f"{p}_admission_dispatches_total",
            "Dispatches from the admission queue by outcome (submitted, requeued, refused, "
            "unknown, expired, cancelled).",
            [OUTCOME],
            registry=r,
        )
        # --- published request schemas ------------------------------------------------
        self.schema_origin_up = Gauge(
            f"{p}_schema_origin_up",
            "Whether the last fetch from the schema origin succeeded (1) or not (0).",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.schema_fetches = Counter(
            f"{p}_schema_fetches_total",
            "Schema fetches by outcome (same, changed, new, unreachable, not_found, invalid).",
            [OUTCOME],
            registry=r,
        )
        self.schema_changes = Counter(
            f"{p}_schema_changes_total",
            "Changes of a model's published schema seen by this process, by model.",
            [MODEL],
            registry=r,
        )
        self.schema_change_waiting = Gauge(
            f"{p}_schema_change_waiting",
            "1 while a model's published schema differs from its pinned one (policy hold).",
            [MODEL],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.schema_catalog_disagreements = Gauge(
            f"{p}_schema_catalog_disagreements",
            "Fields where the catalog spec disagrees with the pinned published schema, by model.",
            [MODEL],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.schema_validations = Counter(
            f"{p}_schema_validations_total",
            "Submit bodies checked, by what checked them (upstream-schema, catalog, "
            "upstream-listed).",
            [SOURCE],
            registry=r,
        )
        # --- build --------------------------------------------------------------------
        self.build = Info(
            f"{p}_build",
            "Version and revision of the running proxy.",
            registry=r,
        )


def usd(micros: int) -> float:
    """Micro-dollars as a float for a metric sample (never used for sums we keep)."""
    return money.sample(micros)
