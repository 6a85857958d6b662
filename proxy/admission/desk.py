"""The request side of the admission queue: admit a submit, or queue it.

A submit that passed every stage (validated, priced, reserved, key claimed) reaches
``admit`` instead of ``SubmitLedger.open_intent``. One store transaction decides: a
slot is free and nobody of the team waits ahead, so its intent is written and it is
sent now; or it becomes a queue row holding its reservations and its idempotency key
(completed with the queued answer, so a replay answers the same ``q-`` id), and the
client hears ``pending`` with the ``q-`` id at once; or the team's queue is full: 429.

A submit billed to a Modellix account with a concurrency (``upstream.accounts``) also waits
for a free slot of its account, shared by every team billing to it; one billed to an account
with a requests-per-minute limit (``rpm`` or its tier) waits while the account's submits of
the last minute (counted in the store, across replicas) reached ``submit_rpm_share`` of it.

A direct send the upstream refuses with 429 (its concurrency limit: say, tasks started
outside the proxy) is queued the same way (``requeue``): nothing was created.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping

import structlog
from aiohttp import web

from proxy.accounts import AccountBook
from proxy.admission.answers import queued_answer
from proxy.config import Settings
from proxy.context import RequestContext
from proxy.errors import TooManyRequests
from proxy.jobs.labels import Labels
from proxy.jobs.ledger import REPLAY_HEADERS, SubmitLedger, hand_over
from proxy.stores.admission_records import QUEUE_PREFIX, Admission, QueuedSubmit, QueueState
from proxy.stores.base import AdmissionStore, StoreError
from proxy.stores.records import Intent, StoredResponse
from proxy.telemetry.metrics import Metrics
from proxy.upstream.retry import RetryPolicy

log = structlog.get_logger("proxy.admission")

# The client headers a queued submit is sent with later (never a credential).
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "accept",
        "user-agent",
        "x-request-id",
        "x-correlation-id",
        "traceparent",
        "tracestate",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
    }
)
_REPLAY_HEADERS = REPLAY_HEADERS | {"x-modellix-proxy-queued"}


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() in KEPT_HEADERS}


def without_429(policy: RetryPolicy) -> RetryPolicy:
    """The submit policy for queueable submits: a 429 queues the submit, it is not retried."""
    return dataclasses.replace(policy, retry_statuses=policy.retry_statuses - {429})


class AdmissionDesk:
    def __init__(
        self,
        settings: Settings,
        store: AdmissionStore,
        metrics: Metrics,
        labels: Labels,
        ledger: SubmitLedger,
        policy: RetryPolicy,
        accounts: AccountBook,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings.admission
        self._accounts = accounts
        self._store = store
        self._metrics = metrics
        self._labels = labels
        self._ledger = ledger
        self._clock = clock
        self.clock = clock
        self.policy = without_429(policy)

    def applies(self, ctx: RequestContext) -> bool:
        """Queueable: admission on, and the submit goes out with one of the proxy's own
        account keys (a virtual key's)."""
        caller = ctx.caller
        if not self._settings.enabled or caller is None or caller.virtual_key_id is None:
            return False
        account = self._accounts.get(caller.account) if caller.account else None
        return account is not None and ctx.upstream_authorization == account.authorization

    def _entry(
        self, ctx: RequestContext, intent: Intent, path: str, headers: Mapping[str, str]
    ) -> QueuedSubmit:
        caller = ctx.caller
        assert caller is not None
        now = self._clock()
        # The request's own id (a request makes at most one queue row): another API door
        # that named the submit by it (an OpenAI video id) finds the row from that name.
        return QueuedSubmit(
            queue_id=f"{QUEUE_PREFIX}{ctx.internal_id}",
            team=caller.team or "",
            caller=caller.identity,
            state=QueueState.QUEUED,
            enqueued_at=now,
            not_before=now,
            path=path,
            body=ctx.body,
            headers=kept_headers(headers),
            job=intent.job,
            idempotency_scope=intent.idempotency_scope,
            idempotency_key=intent.idempotency_key,
            reservation_id=intent.reservation_id,
            slot_reservation_id=intent.slot_reservation_id,
        )

    def _answer(
        self, entry: QueuedSubmit, origin: str, extra: Mapping[str, str]
    ) -> tuple[web.Response, StoredResponse | None]:
        body = queued_answer(entry.queue_id, entry.model_id, origin)
        response = web.Response(status=200, body=body, content_type="application/json")
        response.headers.update(extra)
        response.headers["X-Modellix-Proxy-Queued"] = "true"
        stored = None
        if entry.idempotency_key is not None:
            headers = {k: v for k, v in response.headers.items() if k.lower() in _REPLAY_HEADERS}
            stored = StoredResponse(status=200, headers=headers, body=body, task_id=entry.queue_id)
        return response, stored

    async def admit(
        self,
        ctx: RequestContext,
        path: str,
        headers: Mapping[str, str],
        origin: str,
        extra: Mapping[str, str],
    ) -> web.Response | None:
        """``None``: the intent is written, send now. Otherwise the queued answer."""
        caller = ctx.caller
        assert caller is not None
        intent = self._ledger.intent_for(ctx)
        entry = self._entry(ctx, intent, path, headers)
        response, stored = self._answer(entry, origin, extra)
        team = entry.team
        try:
            decision = await self._store.admission_admit(
                intent,
                entry,
                stored,
                limit=self._settings.concurrency_of(team),
                max_queue=self._settings.max_queue_of(team),
                now=self._clock(),
                account_limit=self._accounts.concurrency(entry.job.account),
                account_rpm=self._accounts.submit_rpm(
                    entry.job.account, self._settings.submit_rpm_share
                ),
            )
        except StoreError:
            # Maybe written, maybe not: undo whichever it was; the request's holds stay on
            # ``ctx`` and ``holding`` releases them.
            await self._ledger.drop_maybe_written(intent)
            await self._ledger.outbox.write(
                f"drop queued {entry.queue_id}",
                lambda: self._cancel(entry.queue_id),
            )
            raise
        if decision is Admission.SEND:
            hand_over(ctx, intent)
            return None
        if decision is Admission.FULL:
            raise TooManyRequests(
                f"the admission queue of team {team or '(none)'} is full "
                f"({self._settings.max_queue_of(team)} submits waiting for the team's "
                f"{self._settings.concurrency_of(team)} upstream slots); nothing was bought, "
                "retry later",
                reason="admission_queue_full",
                headers={"Retry-After": str(self._settings.full_retry_after_seconds)},
            )
        hand_over(ctx, None)
        self._queued(entry, "admitted")
        return response

    async def _cancel(self, queue_id: str) -> bool:
        await self._store.admission_cancel(
            queue_id, "Cancelled: the proxy could not confirm the queued submit", self._clock()
        )
        return True

    async def requeue(
        self,
        ctx: RequestContext,
        path: str,
        headers: Mapping[str, str],
        origin: str,
        extra: Mapping[str, str],
    ) -> web.Response | None:
        """The direct send was refused with 429: queue it instead. ``None`` if the intent
        was already taken by a recovery sweep (the 429 is then passed on)."""
        intent = ctx.intent
        if intent is None:
            return None
        entry = self._entry(ctx, intent, path, headers)
        entry = dataclasses.replace(
            entry, not_before=entry.enqueued_at + self._settings.backoff_seconds
        )
        response, stored = self._answer(entry, origin, extra)
        if not await self._store.admission_requeue_intent(intent, entry, stored):
            return None
        ctx.intent = None
        self._queued(entry, "upstream_429")
        return response

    def _queued(self, entry: QueuedSubmit, why: str) -> None:
        self._metrics.admission_queued.labels(self._labels.team(entry.team or None)).inc()
        log.info(
            "admission.queued",
            queue_id=entry.queue_id,
            team=entry.team,
            caller=entry.caller,
            model=entry.job.pinned_slug,
            why=why,
        )
