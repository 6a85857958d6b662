"""Settling a job that became terminal: exactly once per job across replicas.

The money is settled by the store in the very transaction that makes the job
terminal (the reservation becomes spend or is released, the slot is freed), so no
crash can leave it open. What is left here: the metrics, the one ``job.terminal``
log line, the job span and the hooks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from opentelemetry.trace import SpanContext

from proxy.jobs.labels import Labels
from proxy.money import optional_sample, sample
from proxy.stores.records import JobRecord, JobStatus
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.spans import record_job_span
from proxy.telemetry.traceparent import span_ids, trace_exemplar
from proxy.telemetry.tracing import Tracing

log = structlog.get_logger("proxy.jobs")
TerminalHook = Callable[[JobRecord], None]


class Settler:
    def __init__(
        self,
        metrics: Metrics,
        labels: Labels,
        settled_by: str,
        *,
        forget: Callable[[str], object],
        clock: Callable[[], float] = time.time,
        on_terminal: tuple[TerminalHook, ...] = (),
        tracing: Tracing | None = None,
    ) -> None:
        self._metrics = metrics
        self.labels = labels
        self._settled_by = settled_by
        self._forget = forget
        self._clock = clock
        self._hooks = on_terminal
        self._tracing = tracing

    @property
    def tracing(self) -> Tracing | None:
        return self._tracing

    async def settle(self, job: JobRecord) -> None:
        """Exactly once per job across replicas: metrics, the terminal log line, hooks."""
        self._forget(job.task_id)
        model = self.labels.model(job.pinned_slug)
        team = self.labels.team(job.team)
        status = job.status.value
        m = self._metrics
        m.jobs_terminal.labels(model, team, status).inc()
        end = job.terminal_at if job.terminal_at is not None else self._clock()
        elapsed = max(0.0, end - job.submitted_at)
        span = self._job_span(job, end)
        exemplar = trace_exemplar(span) if span is not None else None
        m.time_to_terminal.labels(model, status).observe(elapsed, exemplar)
        if job.first_processing_at is not None:
            m.queue_time.labels(model).observe(
                max(0.0, job.first_processing_at - job.submitted_at), exemplar
            )
        if job.final_cost_micros is not None and job.status is JobStatus.SUCCESS:
            m.job_cost.labels(model).observe(sample(job.final_cost_micros), exemplar)
        if job.status is JobStatus.SUCCESS and job.cost_source == "charge":
            self._charge_metrics(job, model)
        if job.final_cost_micros:
            m.spend.labels(model, team, self.labels.project(job.project)).inc(
                sample(job.final_cost_micros)
            )
            m.account_spend.labels(self.labels.account(job.account)).inc(
                sample(job.final_cost_micros)
            )
        log.info(
            "job.terminal",
            task_id=job.task_id,
            status=status,
            correlation_id=job.correlation_id,
            input_hash=job.input_hash,
            model=job.pinned_slug,
            alias=job.alias,
            output_urls=list(job.output_urls),
            estimated_cost_usd=optional_sample(job.estimated_cost_micros),
            final_cost_usd=optional_sample(job.final_cost_micros),
            price_source=job.price_source,
            cost_source=job.cost_source,
            attempts=job.upstream_attempts,
            client_polls=job.client_polls,
            watcher_polls=job.watcher_polls,
            wall_clock_seconds=round(elapsed, 3),
            error_reason=job.error_reason,
            team=job.team,
            project=job.project,
            # The job span's ids (not the poll's or request's that happens to settle it).
            **span_ids(span),
        )
        for hook in self._hooks:
            hook(job)

    def _charge_metrics(self, job: JobRecord, model: str) -> None:
        """The upstream's charge against the estimate: the ratio, and a charge off the range."""
        m = self._metrics
        charge = job.final_cost_micros or 0
        m.charged_jobs.labels(model).inc()
        if job.estimated_cost_micros:
            m.charge_estimate_ratio.labels(model).observe(charge / job.estimated_cost_micros)
        # Both series exist (at 0) from a model's first charge on, so increase() sees the
        # first charge outside the range too.
        above = m.charge_outside_estimate.labels(model, "above")
        below = m.charge_outside_estimate.labels(model, "below")
        low, high = job.estimate_low_micros, job.estimate_high_micros
        if high is not None and charge > high:
            above.inc()
        elif low is not None and charge < low:
            below.inc()

    def _job_span(self, job: JobRecord, end: float) -> SpanContext | None:
        """Emit the job span (submit to terminal, linked to the submit); its context."""
        if self._tracing is None:
            return None
        extra = {
            "modellix.team": job.team,
            "modellix.project": job.project,
            "modellix.request_id": job.request_id,
            "modellix.job.error_reason": job.error_reason,
            "modellix.settled_by": self._settled_by,
        }
        context = record_job_span(
            self._tracing,
            task_id=job.task_id,
            submitted_at=job.submitted_at,
            terminal_at=end,
            status=job.status.value,
            model_pinned=job.pinned_slug,
            model_alias=job.alias,
            estimated_cost_usd=optional_sample(job.estimated_cost_micros),
            final_cost_usd=optional_sample(job.final_cost_micros),
            attempts=job.upstream_attempts,
            polls=job.client_polls + job.watcher_polls,
            submit_traceparent=job.traceparent,
            attributes={k: v for k, v in extra.items() if v is not None},
        )
        return context
