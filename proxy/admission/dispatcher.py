"""The dispatcher: sends queued submits as their team's upstream slots free up.

One replica at a time holds the ``admission-dispatcher`` lease (renewed every tick; a
dead holder's lease runs out and another replica takes over). Each tick it expires
submits that waited past their team's max wait, marks rows whose dispatching replica
died (``unknown``), and for each team claims queued rows in fair order
(``fairness.fair_order``) while the store counts a free slot. A claim writes the
row's intent in the same transaction, so from then on the send follows the ledger's
rules: one outcome per intent, recorded in one transaction with the row (the job, an
``unknown`` record, a release), or the recovery sweep makes it ``unknown``.

Outcomes: a task id: the job (polled and settled like any other); the upstream's 429
(its concurrency limit) or a send that never left: queued again after a backoff,
holds kept; a definite refusal (400, 402, 422...): failed with the upstream's message,
holds released; no usable answer: an ``unknown`` record, never resent.

Every replica (lease holder or not) refreshes the queue gauges each tick.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from proxy.accounts import AccountBook
from proxy.admission.answers import upstream_message
from proxy.admission.fairness import fair_order
from proxy.config import Settings
from proxy.jobs.labels import Labels
from proxy.jobs.outbox import Outbox
from proxy.jobs.schedule import Cadence, first_poll_at
from proxy.money import optional_sample
from proxy.stores.admission_records import DispatchClaim, QueueHead
from proxy.stores.base import AdmissionStore, LeaseStore, StoreError
from proxy.telemetry.metrics import Metrics, usd
from proxy.upstream import attempts
from proxy.upstream.client import Upstream
from proxy.upstream.outcome import Verdict, read_outcome
from proxy.upstream.retry import RetryPolicy

log = structlog.get_logger("proxy.admission")
LEASE = "admission-dispatcher"
READY_BATCH = 500
PURGE_EVERY_SECONDS = 60.0


class DispatcherStore(AdmissionStore, LeaseStore, Protocol):
    """The queue's rows and their transactions, and the lease one dispatcher holds."""


class Dispatcher:
    def __init__(
        self,
        store: DispatcherStore,
        settings: Settings,
        metrics: Metrics,
        labels: Labels,
        upstream: Upstream,
        policy: RetryPolicy,
        owner: str,
        accounts: AccountBook,
        *,
        cadence: Cadence,
        outbox: Outbox,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._settings = settings.admission
        self._grace = settings.shutdown_grace_seconds
        self._metrics = metrics
        self._labels = labels
        self._upstream = upstream
        self._policy = policy
        self._owner = owner
        self._accounts = accounts
        self._cadence = cadence
        self._outbox = outbox
        self._clock = clock
        self._rng = rng or random.Random()
        self._sending: set[asyncio.Task[None]] = set()
        self._gauged: set[str] = set()
        self._purged_at = 0.0

    async def run(self) -> None:
        """Tick until cancelled; sends under way get the shutdown grace to finish."""
        try:
            while True:
                try:
                    await self.tick()
                except (StoreError, OSError, TimeoutError) as exc:
                    log.warning("admission.tick_failed", error=str(exc)[:300])
                await asyncio.sleep(self._settings.tick_seconds)
        finally:
            if self._sending:
                await asyncio.wait(set(self._sending), timeout=self._grace)
            for task in list(self._sending):
                task.cancel()

    async def tick(self) -> int:
        """One round; how many submits were claimed for sending."""
        now = self._clock()
        stats = await self._gauges(now)
        if not await self._store.acquire_lease(
            LEASE, self._owner, now, now + self._settings.lease_seconds
        ):
            return 0
        for team, oldest in stats:
            cutoff = now - self._settings.max_wait_of(team)
            if oldest is not None and oldest < cutoff:
                await self._expire(team, cutoff, now)
        orphans = await self._store.admission_orphans(now)
        if orphans:
            self._metrics.admission_dispatches.labels("unknown").inc(orphans)
            log.warning("admission.orphans_unknown", count=orphans)
        if now - self._purged_at > PURGE_EVERY_SECONDS:
            self._purged_at = now
            await self._store.admission_purge(now - self._settings.keep_seconds, 1000)
        return await self._dispatch(now)

    async def _gauges(self, now: float) -> list[tuple[str, float | None]]:
        stats = await self._store.admission_stats()
        seen: set[str] = set()
        for s in stats:
            label = self._labels.team(s.team or None)
            seen.add(label)
            self._metrics.admission_depth.labels(label).set(s.depth)
            wait = 0.0 if s.oldest_enqueued_at is None else max(0.0, now - s.oldest_enqueued_at)
            self._metrics.admission_oldest.labels(label).set(wait)
        for label in self._gauged - seen:
            self._metrics.admission_depth.labels(label).set(0)
            self._metrics.admission_oldest.labels(label).set(0)
        self._gauged = seen
        return [(s.team, s.oldest_enqueued_at) for s in stats]

    async def _expire(self, team: str, cutoff: float, now: float) -> None:
        wait = self._settings.max_wait_of(team)
        message = (
            f"Queue wait exceeded: the submit waited more than {wait:g} s in the proxy's "
            "admission queue for a free upstream slot and was not sent; nothing was bought, "
            "its budget reservation and idempotency key were released. Submit again"
        )
        for row in await self._store.admission_expire(team, cutoff, message, now):
            self._metrics.admission_dispatches.labels("expired").inc()
            self._metrics.admission_wait.labels("expired").observe(max(0.0, now - row.enqueued_at))
            log.warning("admission.expired", queue_id=row.queue_id, team=team, caller=row.caller)

    async def _dispatch(self, now: float) -> int:
        heads = await self._store.admission_ready(now, READY_BATCH)
        by_team: dict[str, list[QueueHead]] = {}
        for head in heads:
            by_team.setdefault(head.team, []).append(head)
        claimed = 0
        for team, team_heads in by_team.items():
            limit = self._settings.concurrency_of(team)
            order = fair_order(team_heads, await self._store.admission_turns(team))
            for head in order:
                account_limit = self._accounts.concurrency(head.account)
                account_rpm = self._accounts.submit_rpm(
                    head.account, self._settings.submit_rpm_share
                )
                claim = await self._store.admission_claim(
                    head.queue_id, self._owner, self._clock(), limit, account_limit, account_rpm
                )
                if claim is None:
                    break  # no free slot (or send this minute) for the team or its account
                claimed += 1
                task = asyncio.get_running_loop().create_task(
                    self._send(claim), name=f"admission-send-{head.queue_id}"
                )
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
        return claimed

    async def _send(self, claim: DispatchClaim) -> None:
        """Send one claimed submit and record its one outcome. If anything stops this half
        way (a bug, or cancellation at shutdown after the grace), the send may have left:
        its outcome is unknown, as for a direct submit (``SubmitLedger.holding``)."""
        try:
            await self._send_and_record(claim)
        except BaseException:
            await self._unknown(claim, "the proxy failed while the queued submit was being sent")
            raise

    async def _send_and_record(self, claim: DispatchClaim) -> None:
        row, intent = claim.row, claim.intent
        headers = dict(row.headers)
        account = self._accounts.get(row.job.account)
        if account is None:  # the account left the configuration while the submit waited
            message = (
                f"Unknown account: the submit's Modellix account {row.job.account!r} is no "
                "longer configured (upstream.accounts); nothing was sent"
            )
            now = self._clock()
            await self._outbox.write(
                f"refused {row.queue_id}",
                lambda: self._store.admission_refused(row.queue_id, intent, message, now),
            )
            self._metrics.admission_dispatches.labels("refused").inc()
            return
        headers["Authorization"] = account.authorization
        headers.setdefault("Content-Type", "application/json")
        metrics = self._metrics
        outcome = await attempts.send(
            self._upstream,
            self._policy,
            "POST",
            row.path,
            headers,
            row.body,
            operation="submit",
            idempotent=False,
            rng=self._rng,
            on_retry=lambda reason: metrics.upstream_retries.labels("submit", reason).inc(),
        )
        now = self._clock()
        reading = read_outcome(outcome)
        verdict = reading.verdict
        if verdict is Verdict.ACCEPTED:
            task_id = reading.task_id
            assert task_id is not None
            job = dataclasses.replace(
                intent.job,
                task_id=task_id,
                next_poll_at=first_poll_at(now, self._cadence, self._rng.random()),
                upstream_attempts=max(1, outcome.attempts),
            )
            await self._outbox.write(
                f"job {task_id}",
                lambda: self._store.admission_to_job(row.queue_id, intent, job, now),
            )
            self._submitted(claim, task_id, now)
        elif verdict is Verdict.UNKNOWN:
            await self._unknown(claim, reading.detail)
        elif verdict is Verdict.NOT_SENT:
            await self._requeue(claim, reading.detail, now)
        elif verdict in (Verdict.BUSY, Verdict.RETRY_LATER):  # nothing created: queue it again
            reply = outcome.reply
            assert reply is not None
            await self._requeue(claim, upstream_message(reply.body, reply.status), now)
        else:  # a definite refusal
            reply = outcome.reply
            assert reply is not None
            message = upstream_message(reply.body, reply.status)
            await self._outbox.write(
                f"refused {row.queue_id}",
                lambda: self._store.admission_refused(row.queue_id, intent, message, now),
            )
            metrics.admission_dispatches.labels("refused").inc()
            log.warning(
                "admission.refused", queue_id=row.queue_id, status=reply.status, message=message
            )

    async def _requeue(self, claim: DispatchClaim, why: str, now: float) -> None:
        row = claim.row
        delay = min(
            self._settings.max_backoff_seconds,
            self._settings.backoff_seconds * 2 ** min(row.attempts, 16),
        )
        await self._outbox.write(
            f"requeue {row.queue_id}",
            lambda: self._store.admission_requeue(
                row.queue_id, claim.intent, now + delay, why, now
            ),
        )
        self._metrics.admission_dispatches.labels("requeued").inc()
        log.info("admission.requeued", queue_id=row.queue_id, retry_in=round(delay, 2), why=why)

    async def _unknown(self, claim: DispatchClaim, detail: str) -> None:
        row, intent = claim.row, claim.intent
        now = self._clock()
        await self._outbox.write(
            f"unknown {intent.placeholder}",
            lambda: self._store.admission_to_unknown(row.queue_id, intent, detail, now),
        )
        self._metrics.admission_dispatches.labels("unknown").inc()
        self._metrics.submit_unknown.labels(self._labels.model(row.job.pinned_slug)).inc()
        log.warning(
            "job.submit_outcome_unknown",
            placeholder=intent.placeholder,
            queue_id=row.queue_id,
            detail=detail,
            model=row.job.pinned_slug,
            input_hash=row.job.input_hash,
        )

    def _submitted(self, claim: DispatchClaim, task_id: str, now: float) -> None:
        row = claim.row
        job = row.job
        metrics = self._metrics
        model = self._labels.model(job.pinned_slug)
        team = self._labels.team(job.team)
        metrics.admission_dispatches.labels("submitted").inc()
        metrics.admission_wait.labels("submitted").observe(max(0.0, now - row.enqueued_at))
        metrics.jobs_submitted.labels(model, team).inc()
        metrics.priced_jobs.labels(model, job.price_source or "unpriced").inc()
        if job.estimated_cost_micros is None:
            metrics.unpriced_jobs.labels(model).inc()
        else:
            metrics.estimated_spend.labels(model, team, self._labels.project(job.project)).inc(
                usd(job.estimated_cost_micros)
            )
        log.info(
            "job.submitted",
            task_id=task_id,
            queue_id=row.queue_id,
            model=job.pinned_slug,
            estimated_cost_usd=optional_sample(job.estimated_cost_micros),
            waited_seconds=round(now - row.enqueued_at, 3),
            input_hash=job.input_hash,
            correlation_id=job.correlation_id,
        )
