"""The job ledger's side of the request path: record submits, follow polls, settle terminals.

Every accepted submit is written before the client hears of it. Every status
change seen (by a client poll or the watcher) is applied with compare-and-set,
so exactly one observer, on any replica, settles a job that became terminal:
one log line, the metrics, the job span, the cost.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiohttp import web

from proxy.config import Settings
from proxy.context import RequestContext
from proxy.governance.settlement import Settlement
from proxy.jobs.labels import Labels
from proxy.jobs.memory import Bounded, Known
from proxy.jobs.schedule import Cadence, first_poll_at
from proxy.jobs.status import Bucket as StatusBucket
from proxy.jobs.status import read_task
from proxy.stages.identify import fingerprint
from proxy.stores.base import JobNotFoundError, Store
from proxy.stores.records import JobRecord, JobStatus, NewJob, StoredResponse
from proxy.telemetry.metrics import Metrics, usd
from proxy.telemetry.tracing import Tracing, record_job_span, trace_exemplar
from proxy.upstream.retry import Bucket

log = structlog.get_logger("proxy.jobs")
TerminalHook = Callable[[JobRecord], None]
_REPLAY_HEADERS = frozenset(
    {
        "content-type",
        "x-modellix-proxy-model",
        "x-modellix-proxy-alias",
        "x-modellix-proxy-estimated-cost-usd",
        "x-modellix-proxy-price-version",
    }
)


@dataclass(frozen=True, slots=True)
class Replica:
    """Who this process is, for leases and the ``submitted_by`` column."""

    id: str


class JobTracker:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        metrics: Metrics,
        labels: Labels,
        replica: Replica,
        *,
        clock: Callable[[], float] = time.time,
        on_terminal: tuple[TerminalHook, ...] = (),
        tracing: Tracing | None = None,
    ) -> None:
        self.store = store
        self._tracing = tracing
        self._settings = settings
        self._metrics = metrics
        self.labels = labels
        self._replica = replica
        self._clock = clock
        self._rng = random.Random()
        self._hooks = on_terminal
        watcher = settings.watcher
        self.cadence = Cadence(
            watcher.first_check_seconds,
            watcher.base_delay_seconds,
            watcher.max_delay_seconds,
            watcher.jitter,
            watcher.stale_after_attempts,
        )
        self.money = Settlement(store, settings.watcher.bill_failed)
        self.keys: Bounded[str, str] = Bounded(100_000)
        self._known: Bounded[str, Known] = Bounded(100_000)
        self._foreign: Bounded[str, bool] = Bounded(100_000)
        self._terminal: Bounded[tuple[str, str], bytes] = Bounded(settings.poll.terminal_cache_size)

    # --- submits ------------------------------------------------------------------------
    async def record_accepted(
        self, ctx: RequestContext, task_id: str, response: web.Response
    ) -> None:
        now = self._clock()
        caller = ctx.caller
        if caller is None or ctx.pinned_slug is None:
            raise RuntimeError("an accepted submit must have a caller and a pinned slug")
        job = self._new_job(
            ctx, task_id, JobStatus.PENDING, first_poll_at(now, self.cadence, self._rng.random())
        )
        await self.store.insert_job(job)
        self.money.handed_to_job(ctx)
        self._known.put(task_id, Known(JobStatus.PENDING, ctx.estimated_cost_micros))
        if ctx.upstream_authorization:
            self.keys.put(task_id, ctx.upstream_authorization)
        if ctx.idempotency_key is not None:
            await self.store.complete(
                caller.identity, ctx.idempotency_key, _stored(response, task_id)
            )
            ctx.idempotency_key = None
        model = self.labels.model(ctx.pinned_slug)
        team = self.labels.team(caller.team)
        self._metrics.jobs_submitted.labels(model, team).inc()
        if ctx.estimated_cost_micros is None:
            self._metrics.unpriced_jobs.labels(model).inc()
        else:
            self._metrics.estimated_spend.labels(
                model, team, self.labels.project(caller.project)
            ).inc(usd(ctx.estimated_cost_micros))
        log.info(
            "job.submitted",
            task_id=task_id,
            model=ctx.pinned_slug,
            alias=ctx.alias,
            estimated_cost_usd=_dollars(ctx.estimated_cost_micros),
            attempts=ctx.upstream_attempts,
            input_hash=ctx.input_hash,
            correlation_id=ctx.correlation_id,
        )

    async def record_unknown(self, ctx: RequestContext, detail: str) -> None:
        """Sent, no usable answer: recorded as ``unknown``; never resent; the key says so."""
        caller = ctx.caller
        if caller is None:
            raise RuntimeError("a sent submit must have a caller")
        placeholder = f"unknown:{ctx.request_id}"
        # Never polled (no task id to poll); expiry settles it if nobody reconciles it.
        await self.store.insert_job(self._new_job(ctx, placeholder, JobStatus.UNKNOWN, None))
        self.money.handed_to_job(ctx)
        if ctx.idempotency_key is not None:
            await self.store.mark_unknown(caller.identity, ctx.idempotency_key)
            ctx.idempotency_key = None
        self._metrics.submit_unknown.labels(self.labels.model(ctx.pinned_slug)).inc()
        log.warning(
            "job.submit_outcome_unknown",
            placeholder=placeholder,
            detail=detail,
            model=ctx.pinned_slug,
            input_hash=ctx.input_hash,
            correlation_id=ctx.correlation_id,
            attempts=ctx.upstream_attempts,
        )

    async def record_refused(
        self, ctx: RequestContext, bucket: Bucket, response: web.Response
    ) -> None:
        """The upstream said no: a definite refusal is replayed for the key.

        A transient one (retries used up) frees the key for the client's retry.
        """
        await self.money.release(ctx)
        if ctx.idempotency_key is None or ctx.caller is None:
            return
        if bucket is Bucket.PERMANENT:
            await self.store.complete(
                ctx.caller.identity, ctx.idempotency_key, _stored(response, None)
            )
        else:
            await self.store.release(ctx.caller.identity, ctx.idempotency_key)
        ctx.idempotency_key = None

    async def finish_claim(self, ctx: RequestContext) -> None:
        """A claim still open here means nothing reached the upstream: let a retry proceed."""
        await self.money.release(ctx)
        if ctx.idempotency_key is not None and ctx.caller is not None:
            await self.store.release(ctx.caller.identity, ctx.idempotency_key)
            ctx.idempotency_key = None

    def _new_job(
        self, ctx: RequestContext, task_id: str, status: JobStatus, next_poll_at: float | None
    ) -> NewJob:
        caller = ctx.caller
        if caller is None:
            raise RuntimeError("a job must have a caller")
        return NewJob(
            task_id=task_id,
            caller=caller.identity,
            pinned_slug=ctx.pinned_slug or ctx.requested_slug or "",
            submitted_at=ctx.received_at,
            team=caller.team,
            project=caller.project,
            alias=ctx.alias,
            input_hash=ctx.input_hash,
            correlation_id=ctx.correlation_id,
            request_id=ctx.request_id,
            idempotency_key=ctx.idempotency_key,
            price_table_version=ctx.price_table_version,
            estimated_cost_micros=ctx.estimated_cost_micros,
            status=status,
            upstream_attempts=ctx.upstream_attempts,
            traceparent=ctx.traceparent,
            submitted_by=self._replica.id,
            next_poll_at=next_poll_at,
            reservation_id=ctx.reservation_id,
        )

    # --- polls --------------------------------------------------------------------------
    async def cached_terminal(self, task_id: str, authorization: str | None) -> bytes | None:
        if not authorization or not self._settings.poll.serve_terminal_from_ledger:
            return None
        return self._terminal.get((task_id, fingerprint(authorization)))

    async def observe_reply(
        self, task_id: str, status: int, body: bytes, *, source: str, authorization: str | None
    ) -> JobRecord | None:
        """Apply a poll answer to the job; returns the job if it is ours."""
        if status != 200:
            return None
        view = read_task(body)
        if view is None:
            return None
        now = self._clock()
        if authorization:
            self.keys.put(task_id, authorization)
        if view.status is None:
            job = await self.store.get_job(task_id)
            self._metrics.unknown_status.labels(
                self.labels.model(job.pinned_slug if job else None)
            ).inc()
            log.warning("job.unrecognised_status", task_id=task_id, status=view.raw_status)
            return job
        final: int | None = None
        error_reason = view.message
        if view.bucket is StatusBucket.BLOCKED:
            error_reason = f"{view.raw_status}: {view.message or 'refused by the upstream'}"
        if self._foreign.get(task_id):
            return None
        grace = self._settings.watcher.client_grace_seconds
        client = source == "client"
        known = self._known.get(task_id)
        if (
            client
            and known is not None
            and known.status is view.status
            and not view.status.terminal
            and now < known.deferred_until - grace / 2
        ):
            known.unsaved_polls += 1  # nothing moved: written with the next change
            return None
        if known is None:
            job = await self.store.get_job(task_id)
            if job is None:
                # Not submitted through this ledger; it never will be (ids are new at submit).
                self._foreign.put(task_id, True)
                return None
            known = Known(job.status, job.estimated_cost_micros)
            self._known.put(task_id, known)
        if view.status is JobStatus.SUCCESS or (
            view.status is JobStatus.FAILED and self._settings.watcher.bill_failed
        ):
            final = known.estimate_micros
        elif view.status is JobStatus.FAILED:
            final = 0
        try:
            transition = await self.store.observe(
                task_id,
                view.status.value,
                now,
                source="client" if client else "watcher",
                output_urls=view.output_urls or None,
                error_reason=error_reason if view.status is JobStatus.FAILED else None,
                final_cost_micros=final,
                defer_until=now + grace if client else None,
                polls=known.unsaved_polls + 1 if client else 1,
            )
        except JobNotFoundError:
            self._known.pop(task_id)
            return None
        if client:
            known.unsaved_polls = 0
            known.deferred_until = now + grace
        known.status = transition.job.status
        if transition.job.terminal:
            self._known.pop(task_id)
        if view.status.terminal and authorization:
            self._terminal.put((task_id, fingerprint(authorization)), body)
        if transition.became_terminal:
            await self.settle(transition.job)
        return transition.job

    # --- terminal -----------------------------------------------------------------------
    async def settle(self, job: JobRecord) -> None:
        """Exactly once per job across replicas: money, metrics, the terminal log line, hooks."""
        self.keys.pop(job.task_id)
        await self.money.settle(job)
        model = self.labels.model(job.pinned_slug)
        team = self.labels.team(job.team)
        status = job.status.value
        m = self._metrics
        m.jobs_terminal.labels(model, team, status).inc()
        end = job.terminal_at if job.terminal_at is not None else self._clock()
        elapsed = max(0.0, end - job.submitted_at)
        exemplar = self._job_span(job, end)
        m.time_to_terminal.labels(model, status).observe(elapsed, exemplar)
        if job.first_processing_at is not None:
            m.queue_time.labels(model).observe(
                max(0.0, job.first_processing_at - job.submitted_at), exemplar
            )
        if job.final_cost_micros is not None and job.status is JobStatus.SUCCESS:
            m.job_cost.labels(model).observe(usd(job.final_cost_micros), exemplar)
        if job.final_cost_micros:
            m.spend.labels(model, team, self.labels.project(job.project)).inc(
                usd(job.final_cost_micros)
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
            estimated_cost_usd=_dollars(job.estimated_cost_micros),
            final_cost_usd=_dollars(job.final_cost_micros),
            attempts=job.upstream_attempts,
            client_polls=job.client_polls,
            watcher_polls=job.watcher_polls,
            wall_clock_seconds=round(elapsed, 3),
            error_reason=job.error_reason,
            team=job.team,
            project=job.project,
        )
        for hook in self._hooks:
            hook(job)

    def _job_span(self, job: JobRecord, end: float) -> dict[str, str] | None:
        """Emit the job span (submit to terminal, linked to the submit); its exemplar labels."""
        if self._tracing is None:
            return None
        extra = {
            "modellix.team": job.team,
            "modellix.project": job.project,
            "modellix.request_id": job.request_id,
            "modellix.job.error_reason": job.error_reason,
            "modellix.settled_by": self._replica.id,
        }
        context = record_job_span(
            self._tracing,
            task_id=job.task_id,
            submitted_at=job.submitted_at,
            terminal_at=end,
            status=job.status.value,
            model_pinned=job.pinned_slug,
            model_alias=job.alias,
            estimated_cost_usd=_dollars(job.estimated_cost_micros),
            final_cost_usd=_dollars(job.final_cost_micros),
            attempts=job.upstream_attempts,
            polls=job.client_polls + job.watcher_polls,
            submit_traceparent=job.traceparent,
            attributes={k: v for k, v in extra.items() if v is not None},
        )
        return trace_exemplar(context)


def _stored(response: web.Response, task_id: str | None) -> StoredResponse:
    body = response.body if isinstance(response.body, bytes) else b""
    headers = {k: v for k, v in response.headers.items() if k.lower() in _REPLAY_HEADERS}
    return StoredResponse(status=response.status, headers=headers, body=body, task_id=task_id)


def _dollars(micros: int | None) -> float | None:
    return None if micros is None else micros / 1_000_000
