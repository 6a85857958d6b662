"""The submit side of the job ledger: a write-ahead intent, then exactly one outcome.

Before a paid submit is sent, its intent (caller, pinned model, input hash, estimate,
idempotency claim, budget reservation, concurrency slot, owner) is durable in the
store. After the upstream's answer, one transaction turns the intent into:

- the job (a task id came back): the client hears of the task only after this, unless
  the store fails, in which case the client still gets its task (it was bought) and
  the write is retried until it lands (``Outbox``), with the idempotency key held;
- an ``unknown`` record (sent, no usable answer): money kept, slot freed, the key
  answering 409 until an operator reconciles it; never resent;
- a release (a definite refusal, or nothing was sent): money, slot and key freed.

If the process dies in between, the intent stays, and the recovery sweep (another
replica, or this one restarted) turns it into an ``unknown`` record.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

import structlog
from aiohttp import web

from proxy.config import Settings
from proxy.context import RequestContext
from proxy.jobs.labels import Labels
from proxy.jobs.memory import Bounded, Known
from proxy.jobs.outbox import Outbox
from proxy.jobs.schedule import Cadence, first_poll_at
from proxy.money import optional_sample
from proxy.stores.base import BudgetStore, IdempotencyStore, IntentStore, StoreError
from proxy.stores.records import Intent, JobStatus, NewJob, StoredResponse, unknown_task_id
from proxy.telemetry.metrics import Metrics, usd
from proxy.upstream.retry import Bucket

log = structlog.get_logger("proxy.jobs")
# The answer's headers an idempotent replay gives again.
REPLAY_HEADERS = frozenset(
    {
        "content-type",
        "x-modellix-proxy-model",
        "x-modellix-proxy-alias",
        "x-modellix-proxy-estimated-cost-usd",
        "x-modellix-proxy-price-version",
        "x-modellix-proxy-price-source",
        "x-modellix-proxy-estimated-cost-range-usd",
        "x-modellix-proxy-estimate-bounded",
    }
)


class SubmitLedgerStore(IntentStore, BudgetStore, IdempotencyStore, Protocol):
    """The intent and its outcomes, and the holds a request gives back when it ends
    before its intent was written (a reservation, an idempotency claim)."""


class SubmitLedger:
    def __init__(
        self,
        store: SubmitLedgerStore,
        settings: Settings,
        metrics: Metrics,
        labels: Labels,
        owner: str,
        *,
        cadence: Cadence,
        keys: Bounded[str, str],
        known: Bounded[str, Known],
        outbox: Outbox,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._labels = labels
        self._owner = owner
        self._cadence = cadence
        self._keys = keys
        self._known = known
        self._outbox = outbox
        self._clock = clock
        self._rng = random.Random()

    def intent_for(self, ctx: RequestContext) -> Intent:
        """The intent this submit writes before it is sent (not written yet)."""
        caller = ctx.caller
        if caller is None:
            raise RuntimeError("a submit must have a caller before it is sent")
        return Intent(
            intent_id=ctx.internal_id,
            owner=self._owner,
            created_at=self._clock(),
            job=self._intended_job(ctx),
            idempotency_scope=caller.identity if ctx.idempotency_key is not None else None,
            idempotency_key=ctx.idempotency_key,
            reservation_id=ctx.reservation_id,
            slot_reservation_id=ctx.slot_reservation_id,
        )

    async def open_intent(self, ctx: RequestContext) -> Intent:
        """Make the submit durable before it is sent; it then owns the claim and the money."""
        intent = self.intent_for(ctx)
        try:
            await self._store.open_intent(intent)
        except StoreError:
            # Maybe written, maybe not: nothing will be sent, so drop it if it is there.
            # The request's holds stay on ``ctx`` and ``holding`` releases them.
            await self.drop_maybe_written(intent)
            raise
        hand_over(ctx, intent)
        return intent

    async def drop_maybe_written(self, intent: Intent) -> None:
        """An intent whose write failed may be there anyway: nothing will be sent, drop it."""
        await self._outbox.write(
            f"drop intent {intent.intent_id}",
            lambda: self._store.intent_release(intent, None, complete=False),
        )

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    async def accepted(self, ctx: RequestContext, task_id: str, response: web.Response) -> None:
        """The upstream created ``task_id``: the job is recorded (or will be, by the outbox)."""
        intent = self._take(ctx)
        caller = ctx.caller
        if caller is None or ctx.pinned_slug is None:
            raise RuntimeError("an accepted submit must have a caller and a pinned slug")
        now = self._clock()
        job = dataclasses.replace(
            intent.job,
            task_id=task_id,
            next_poll_at=first_poll_at(now, self._cadence, self._rng.random()),
            upstream_attempts=max(1, ctx.upstream_attempts),
        )
        stored = _stored(response, task_id) if intent.idempotency_key is not None else None
        landed = await self._outbox.write(
            f"job {task_id}", lambda: self._store.intent_to_job(intent, job, stored)
        )
        self._known.put(task_id, Known(JobStatus.PENDING, ctx.estimated_cost_micros))
        if ctx.upstream_authorization:
            self._keys.put(task_id, ctx.upstream_authorization)
        model = self._labels.model(ctx.pinned_slug)
        team = self._labels.team(caller.team)
        self._metrics.jobs_submitted.labels(model, team).inc()
        self._metrics.jobs_by_api.labels(ctx.api, model).inc()
        self._metrics.priced_jobs.labels(model, ctx.price_source or "unpriced").inc()
        if ctx.estimated_cost_micros is None:
            self._metrics.unpriced_jobs.labels(model).inc()
        else:
            self._metrics.estimated_spend.labels(
                model, team, self._labels.project(caller.project)
            ).inc(usd(ctx.estimated_cost_micros))
        log.info(
            "job.submitted",
            task_id=task_id,
            model=ctx.pinned_slug,
            alias=ctx.alias,
            estimated_cost_usd=optional_sample(ctx.estimated_cost_micros),
            attempts=ctx.upstream_attempts,
            input_hash=ctx.input_hash,
            correlation_id=ctx.correlation_id,
            recorded=landed,
        )

    async def unknown(self, ctx: RequestContext, detail: str) -> str:
        """Sent, no usable answer: an ``unknown`` record; never resent. Its placeholder id."""
        intent = self._take(ctx)
        await self._outbox.write(
            f"unknown {intent.placeholder}", lambda: self._store.intent_to_unknown(intent, detail)
        )
        self._metrics.submit_unknown.labels(self._labels.model(ctx.pinned_slug)).inc()
        log.warning(
            "job.submit_outcome_unknown",
            placeholder=intent.placeholder,
            detail=detail,
            model=ctx.pinned_slug,
            input_hash=ctx.input_hash,
            correlation_id=ctx.correlation_id,
            attempts=ctx.upstream_attempts,
        )
        return intent.placeholder

    async def refused(
        self, ctx: RequestContext, bucket: Bucket, response: web.Response | None
    ) -> None:
        """Nothing was created: a definite refusal is replayed for the key, anything else
        (retries used up, or never sent) frees the key for the client's retry."""
        intent = self._take(ctx)
        complete = bucket is Bucket.PERMANENT and response is not None
        stored = _stored(response, None) if complete and response is not None else None
        await self._outbox.write(
            f"release {intent.intent_id}",
            lambda: self._store.intent_release(intent, stored, complete=complete),
        )

    def _take(self, ctx: RequestContext) -> Intent:
        intent = ctx.intent
        if intent is None:
            raise RuntimeError("no intent was written for this submit")
        ctx.intent = None
        return intent

    @asynccontextmanager
    async def holding(self, ctx: RequestContext) -> AsyncIterator[None]:
        """The one place a submit's holds end: whatever the request still holds when it
        ends (an answer, a refusal, an error, a cancelled client) is settled here.

        Stages take the holds (``stages.idempotency``: the key's claim; ``stages.budget``:
        the reservation and the concurrency slot); ``hand_over`` gives them to the intent
        or to a queue row, and the intent's one outcome (``accepted``, ``unknown``,
        ``refused``) ends them in the store. On leaving, an intent still open means the
        send was under way when something failed: the outcome is unknown. Otherwise
        nothing was sent: the money, the slot and the key are released.
        """
        try:
            yield
        finally:
            await self._release_leftovers(ctx)

    async def _release_leftovers(self, ctx: RequestContext) -> None:
        if ctx.intent is not None:
            await self.unknown(ctx, "the proxy failed while the submit was being sent")
            return
        caller = ctx.caller
        for reservation_id in (ctx.reservation_id, ctx.slot_reservation_id):
            if reservation_id is not None:
                await self._outbox.write(
                    f"release {reservation_id}", _releaser(self._store, reservation_id)
                )
        ctx.reservation_id = ctx.slot_reservation_id = None
        if ctx.idempotency_key is not None and caller is not None:
            scope, key, claim = caller.identity, ctx.idempotency_key, ctx.internal_id
            await self._outbox.write(
                "release idempotency key", lambda: self._store.release(scope, key, claim)
            )
            ctx.idempotency_key = None

    def _intended_job(self, ctx: RequestContext) -> NewJob:
        """The job this submit becomes, under its ``unknown:`` placeholder until a task id."""
        caller = ctx.caller
        if caller is None:
            raise RuntimeError("a job must have a caller")
        return NewJob(
            task_id=unknown_task_id(ctx.internal_id),
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
            price_source=ctx.price_source,
            estimate_low_micros=ctx.estimate_low_micros,
            estimate_high_micros=ctx.estimate_high_micros,
            estimate_bounded=ctx.estimate_bounded,
            status=JobStatus.PENDING,
            upstream_attempts=max(1, ctx.upstream_attempts),
            traceparent=ctx.traceparent,
            submitted_by=self._owner,
            next_poll_at=None,
            reservation_id=ctx.reservation_id,
            slot_reservation_id=ctx.slot_reservation_id,
            callback_url=ctx.callback_url,
            account=caller.account,
            api=ctx.api,
            api_ref=ctx.api_ref,
            api_request=ctx.api_request,
        )


def hand_over(ctx: RequestContext, intent: Intent | None) -> None:
    """The request's holds now belong to ``intent`` (or to a queue row when ``None``)."""
    ctx.intent = intent
    ctx.idempotency_key = None
    ctx.reservation_id = None
    ctx.slot_reservation_id = None


def _releaser(store: BudgetStore, reservation_id: str) -> Callable[[], Awaitable[bool]]:
    async def release() -> bool:
        return await store.budget_release(reservation_id)

    return release


def _stored(response: web.Response, task_id: str | None) -> StoredResponse:
    body = response.body if isinstance(response.body, bytes) else b""
    headers = {k: v for k, v in response.headers.items() if k.lower() in REPLAY_HEADERS}
    return StoredResponse(status=response.status, headers=headers, body=body, task_id=task_id)
