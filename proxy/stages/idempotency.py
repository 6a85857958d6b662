"""``Idempotency-Key`` on paid submits (IETF httpapi draft semantics, Stripe-like).

Keys are scoped per caller. The same key with the same request replays the
stored answer (``Idempotent-Replayed: true``, no upstream call); the same key
with another request is 422; while the first request with a key is still in
flight a second one gets 409 with ``Retry-After`` (our choice over waiting:
a submit can take seconds and holding connections open hides the conflict);
a key whose first request has an unknown outcome gets 409 too, saying so,
because resending could buy the same video twice.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable

from aiohttp import web

from proxy.config import IdempotencySettings
from proxy.context import RequestContext
from proxy.errors import BadRequest, Conflict, IdempotencyMismatch
from proxy.stores.base import IdempotencyStore
from proxy.stores.records import ClaimOutcome
from proxy.telemetry.metrics import Metrics

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def request_fingerprint(ctx: RequestContext) -> str:
    data = f"{ctx.pinned_slug}\n{ctx.path_form}\n{ctx.input_hash}".encode()
    return hashlib.sha256(data).hexdigest()


class IdempotencyStage:
    name = "idempotency"

    def __init__(
        self,
        store: IdempotencyStore,
        settings: IdempotencySettings,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        *,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._owner = owner  # the replica holding claims until their outcome is recorded

    async def __call__(self, ctx: RequestContext) -> None:
        key = ctx.headers.get(HEADER)
        ttl = self._settings.ttl_seconds
        if key is None:
            window = self._settings.auto_dedupe_window_seconds
            if window <= 0:
                return
            key, ttl = f"auto:{ctx.input_hash}", window
        elif not _KEY.match(key):
            raise BadRequest(
                f"{HEADER} must be 1 to 255 printable ASCII characters",
                reason="bad_idempotency_key",
            )
        assert ctx.caller is not None
        # Named before the call: if the store commits the claim and then fails to say so,
        # the request still releases it (only its own claim, by its claim id).
        ctx.idempotency_key = key
        claim = await self._store.claim(
            ctx.caller.identity,
            key,
            request_fingerprint(ctx),
            self._clock(),
            ttl_seconds=ttl,
            in_flight_timeout=self._settings.in_flight_timeout_seconds,
            claim_id=ctx.internal_id,
            owner=self._owner,
        )
        if claim.outcome is ClaimOutcome.NEW:
            return
        ctx.idempotency_key = None
        if claim.outcome is ClaimOutcome.REPLAY:
            assert claim.response is not None
            stored = claim.response
            self._metrics.idempotent_replays.inc()
            ctx.task_id = stored.task_id
            answer = web.Response(status=stored.status, body=stored.body, headers=stored.headers)
            answer.headers["Idempotent-Replayed"] = "true"
            ctx.answer = answer
            return
        kind = claim.outcome.value
        self._metrics.idempotency_conflicts.labels(kind).inc()
        if claim.outcome is ClaimOutcome.MISMATCH:
            raise IdempotencyMismatch(
                f"this {HEADER} was first used with a different request; use a new key",
                reason="idempotency_mismatch",
            )
        if claim.outcome is ClaimOutcome.IN_FLIGHT:
            raise Conflict(
                f"a request with this {HEADER} is still in flight; retry shortly",
                reason="idempotency_in_flight",
                headers={"Retry-After": "1"},
            )
        raise Conflict(
            f"the first request with this {HEADER} was sent but its outcome is unknown "
            "(a task may exist); it will not be resent, and this key answers 409 until an "
            "operator reconciles the unknown record. Check your tasks before using a new key",
            reason="idempotency_outcome_unknown",
            details={"task_id": claim.task_id} if claim.task_id else None,
        )
