"""Write-ahead submit intents and the recovery of what dead replicas left, for both engines.

A paid submit writes its intent before the upstream send. The transaction that
records the outcome removes the intent and, in the same commit, writes the job (or
the ``unknown`` record, or releases the money) and settles the idempotency key. So
whenever the process dies, a task the upstream may have created is either a job or
still an intent; ``recover`` turns the intents of replicas whose heartbeat stopped
into ``unknown`` records (never released automatically) and releases the
reservations those replicas held for requests that never got as far as an intent.

Reservations carry the replica that holds them (``owner``) until a ledger row does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from proxy.jsoncodec import dumps_record, loads
from proxy.stores._budgets import BudgetsMixin
from proxy.stores._crossings import TAKE_INTENT
from proxy.stores._idempotency import IdempotencyMixin
from proxy.stores._jobs import JobsMixin
from proxy.stores._sql import Row, Tx, job_from_row
from proxy.stores.base import DuplicateJobError, HoldLostError
from proxy.stores.records import (
    HeldReservation,
    Intent,
    JobRecord,
    JobStatus,
    NewJob,
    Recovery,
    StoredResponse,
)

OPEN_INTENT = """
INSERT INTO submit_intents (intent_id, owner, created_at, job, idempotency_scope,
    idempotency_key, reservation_id, slot_reservation_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"""

HELD_RESERVATION = (
    "SELECT reservation_id FROM budget_reservations WHERE reservation_id = $1"
    " AND state = 'reserved'"
)
HELD_CLAIM = (
    "SELECT key FROM idempotency_keys WHERE scope = $1 AND key = $2 AND state = 'in_flight'"
    " AND (claim_id IS NULL OR claim_id = $3)"
)

HEARTBEAT = """
INSERT INTO replicas (replica_id, started_at, heartbeat_at) VALUES ($1, $2, $2)
ON CONFLICT (replica_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at"""

# An owner is gone when its heartbeat is older than the lease, or when it never wrote
# one and what it holds is older than the lease (rows from before heartbeats existed).
DEAD_INTENTS = """
SELECT i.intent_id FROM submit_intents i LEFT JOIN replicas r ON r.replica_id = i.owner
WHERE i.owner <> $3
  AND ((r.heartbeat_at IS NULL AND i.created_at < $1) OR r.heartbeat_at < $1)
ORDER BY i.created_at LIMIT $2"""

# Claims a dead replica held for requests that never wrote an intent: nothing was sent.
DEAD_CLAIMS = """
SELECT k.scope, k.key, k.claim_id FROM idempotency_keys k
LEFT JOIN replicas r ON r.replica_id = k.owner
WHERE k.owner IS NOT NULL AND k.claim_id IS NOT NULL AND k.state = 'in_flight'
  AND k.owner <> $3
  AND ((r.heartbeat_at IS NULL AND k.claimed_at < $1) OR r.heartbeat_at < $1)
  AND NOT EXISTS (SELECT 1 FROM submit_intents i
                  WHERE i.idempotency_scope = k.scope AND i.idempotency_key = k.key)
LIMIT $2"""

DEAD_RESERVATIONS = """
SELECT b.reservation_id FROM budget_reservations b
LEFT JOIN replicas r ON r.replica_id = b.owner
WHERE b.owner IS NOT NULL AND b.state = 'reserved' AND b.owner <> $3
  AND ((r.heartbeat_at IS NULL AND COALESCE(b.created_at, 0) < $1) OR r.heartbeat_at < $1)
LIMIT $2"""

OPEN_RESERVATIONS = """
SELECT b.reservation_id, b.amount_micros, b.scopes, b.owner, b.created_at,
    (SELECT j.task_id FROM jobs j WHERE j.reservation_id = b.reservation_id
        OR j.slot_reservation_id = b.reservation_id LIMIT 1) AS task_id
FROM budget_reservations b WHERE b.state = 'reserved'
ORDER BY b.created_at LIMIT $1"""


# Every field of a NewJob is a scalar: read them directly (``dataclasses.asdict`` deep-copies).
_NEW_JOB_FIELDS = tuple(f.name for f in dataclasses.fields(NewJob))
_KNOWN_FIELDS = frozenset(_NEW_JOB_FIELDS)


def job_json(job: NewJob) -> str:
    fields = {name: getattr(job, name) for name in _NEW_JOB_FIELDS}
    fields["status"] = job.status.value
    return dumps_record(fields)


def job_from_json(raw: str | dict[str, Any]) -> NewJob:
    fields: dict[str, Any] = loads(raw) if isinstance(raw, str) else dict(raw)
    fields["status"] = JobStatus(fields["status"])
    return NewJob(**{k: v for k, v in fields.items() if k in _KNOWN_FIELDS})


def intent_from_row(row: Row) -> Intent:
    return Intent(
        intent_id=row["intent_id"],
        owner=row["owner"],
        created_at=float(row["created_at"]),
        job=job_from_json(row["job"]),
        idempotency_scope=row["idempotency_scope"],
        idempotency_key=row["idempotency_key"],
        reservation_id=row["reservation_id"],
        slot_reservation_id=row["slot_reservation_id"],
    )


class IntentsMixin(JobsMixin, IdempotencyMixin, BudgetsMixin):
    """``IntentStore`` over any ``SqlBase`` connection provider."""

    async def open_intent(self, intent: Intent) -> None:
        """Record the intent, in the same transaction checking that what the request holds
        is still its own: a replica taken for dead (a stall past the lease) may have had its
        reservations and claim released by another one; then nothing may be sent."""
        async with self._write(inline=True) as tx:
            await self._check_holds(tx, intent)
            await tx.execute(
                self.dialect.sql(OPEN_INTENT),
                intent.intent_id, intent.owner, intent.created_at, job_json(intent.job),
                intent.idempotency_scope, intent.idempotency_key, intent.reservation_id,
                intent.slot_reservation_id,
            )  # fmt: skip

    async def _check_holds(self, tx: Tx, intent: Intent) -> None:
        """What the request holds (reservations, idempotency claim) is still its own."""
        for reservation_id in (intent.reservation_id, intent.slot_reservation_id):
            if reservation_id is not None and not await tx.fetchrow(
                self.dialect.sql(HELD_RESERVATION + self.dialect.lock_rows), reservation_id
            ):
                raise HoldLostError(f"reservation {reservation_id} is no longer held")
        scope, key = intent.idempotency_scope, intent.idempotency_key
        if (
            scope is not None
            and key is not None
            and not await tx.fetchrow(
                self.dialect.sql(HELD_CLAIM + self.dialect.lock_rows), scope, key, intent.intent_id
            )
        ):
            raise HoldLostError(f"the idempotency claim of {key!r} is no longer held")

    async def intent_to_job(
        self, intent: Intent, job: NewJob, response: StoredResponse | None
    ) -> JobRecord:
        """The upstream created ``job.task_id``: record it, drop the intent, settle the key."""
        async with self._write(inline=True) as tx:
            return await self._intent_to_job(tx, intent, job, response)

    async def intent_to_unknown(self, intent: Intent, detail: str) -> JobRecord | None:
        """Sent without a usable answer: the ``unknown`` record keeps the money, frees the slot.

        Returns the record, or ``None`` if the intent was already resolved elsewhere.
        """
        async with self._write(inline=True) as tx:
            taken = await tx.fetchrow(self.dialect.sql(TAKE_INTENT), intent.intent_id)
            if taken is None:
                return None
            return await self._intent_to_unknown(tx, intent_from_row(taken), detail)

    async def intent_release(
        self, intent: Intent, response: StoredResponse | None, *, complete: bool
    ) -> bool:
        """Nothing was created upstream: drop the intent, release its money and slot.

        The idempotency key is completed with ``response`` (a definite refusal is
        replayed) when ``complete``, otherwise released for the client's retry.
        """
        async with self._write(inline=True) as tx:
            taken = await tx.fetchrow(self.dialect.sql(TAKE_INTENT), intent.intent_id)
            if taken is None:
                return False
            for reservation_id in (intent.reservation_id, intent.slot_reservation_id):
                if reservation_id is not None:
                    await self._close_in(tx, reservation_id, "released", 0)
            scope, key = intent.idempotency_scope, intent.idempotency_key
            if scope and key:
                if complete and response is not None:
                    await self._complete_in(tx, scope, key, response, intent.intent_id)
                else:
                    await self._release_in(tx, scope, key, intent.intent_id)
        return True

    async def heartbeat(self, replica_id: str, now: float) -> None:
        async with self._write(inline=True) as tx:
            await tx.execute(self.dialect.sql(HEARTBEAT), replica_id, now)

    async def recover(
        self, me: str, now: float, lease_seconds: float, limit: int = 200
    ) -> Recovery:
        """Turn dead replicas' intents into ``unknown`` records; release their reservations.

        Intents first: an intent's budget reservation goes to its ``unknown`` record.
        Each item is taken in its own transaction (``DELETE ... RETURNING`` / the
        reservation's state), so two replicas sweeping at once never both act on it.
        """
        cutoff = now - lease_seconds
        sql = self.dialect.sql
        async with self._read() as tx:
            intent_ids = [
                r["intent_id"] for r in await tx.fetch(sql(DEAD_INTENTS), cutoff, limit, me)
            ]
        unknown: list[JobRecord] = []
        for intent_id in intent_ids:
            async with self._write() as tx:
                taken = await tx.fetchrow(sql(TAKE_INTENT), intent_id)
                if taken is None:
                    continue
                unknown.append(
                    await self._intent_to_unknown(
                        tx,
                        intent_from_row(taken),
                        f"the replica {taken['owner']} stopped between sending this submit "
                        "and recording its answer; a task may exist upstream",
                    )
                )
        async with self._read() as tx:
            held = [
                r["reservation_id"]
                for r in await tx.fetch(sql(DEAD_RESERVATIONS), cutoff, limit, me)
            ]
        released = 0
        for reservation_id in held:
            async with self._write() as tx:
                released += await self._close_in(tx, reservation_id, "released", 0)
        async with self._read() as tx:
            claims = await tx.fetch(sql(DEAD_CLAIMS), cutoff, limit, me)
        freed = 0
        for claim in claims:
            async with self._write() as tx:
                freed += await self._release_in(tx, claim["scope"], claim["key"], claim["claim_id"])
        async with self._write() as tx:
            await tx.execute(
                sql("DELETE FROM replicas WHERE heartbeat_at < $1 AND replica_id <> $2"),
                now - max(lease_seconds * 10, 3600.0),
                me,
            )
        return Recovery(
            unknown=tuple(unknown), reservations_released=released, claims_released=freed
        )

    async def list_intents(self, limit: int = 100) -> list[Intent]:
        async with self._read() as tx:
            rows = await tx.fetch(
                self.dialect.sql("SELECT * FROM submit_intents ORDER BY created_at LIMIT $1"),
                limit,
            )
        return [intent_from_row(r) for r in rows]

    async def open_reservations(self, limit: int = 100) -> list[HeldReservation]:
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(OPEN_RESERVATIONS), limit)
        return [
            HeldReservation(
                reservation_id=r["reservation_id"],
                amount_micros=int(r["amount_micros"]),
                scopes=tuple(
                    (str(k), float(str(w)))
                    for k, w in (
                        json.loads(r["scopes"]) if isinstance(r["scopes"], str) else r["scopes"]
                    )
                ),
                owner=r["owner"],
                created_at=None if r["created_at"] is None else float(r["created_at"]),
                task_id=r["task_id"],
            )
            for r in rows
        ]

    async def release_reservations(self, reservation_ids: Sequence[str]) -> int:
        released = 0
        for reservation_id in reservation_ids:
            async with self._write() as tx:
                released += await self._close_in(tx, reservation_id, "released", 0)
        return released

    async def attach_task(self, placeholder: str, task_id: str, now: float) -> JobRecord | None:
        """An operator found the task an ``unknown`` record stood for: the record becomes
        that job (same caller, model, money), due for a poll now. ``None`` if the record
        is not an open ``unknown`` one."""
        async with self._write() as tx:
            row = await tx.fetchrow(
                self.dialect.sql("DELETE FROM jobs WHERE task_id = $1 AND status = $2 RETURNING *"),
                placeholder,
                JobStatus.UNKNOWN.value,
            )
            if row is None:
                return None
            old = job_from_row(row)
            job = NewJob(
                task_id=task_id, caller=old.caller, pinned_slug=old.pinned_slug,
                submitted_at=old.submitted_at, team=old.team, project=old.project,
                alias=old.alias, input_hash=old.input_hash, correlation_id=old.correlation_id,
                request_id=old.request_id, idempotency_key=old.idempotency_key,
                price_table_version=old.price_table_version,
                estimated_cost_micros=old.estimated_cost_micros, status=JobStatus.PENDING,
                price_source=old.price_source, estimate_low_micros=old.estimate_low_micros,
                estimate_high_micros=old.estimate_high_micros,
                estimate_bounded=old.estimate_bounded,
                upstream_attempts=old.upstream_attempts, traceparent=old.traceparent,
                submitted_by=old.submitted_by, next_poll_at=now,
                reservation_id=old.reservation_id, callback_url=old.callback_url,
                account=old.account,
                api=old.api, api_ref=old.api_ref, api_request=old.api_request,
            )  # fmt: skip
            recorded = await self._insert_job(tx, job)
            if recorded is None:
                raise DuplicateJobError(task_id)
            if old.idempotency_key:
                await tx.execute(
                    self.dialect.sql(
                        "UPDATE idempotency_keys SET task_id = $3"
                        " WHERE scope = $1 AND key = $2 AND state = 'unknown'"
                    ),
                    old.caller,
                    old.idempotency_key,
                    task_id,
                )
        return recorded

    async def purge_closed_reservations(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` settled or released reservations created before ``before``."""
        sql = (
            "DELETE FROM budget_reservations WHERE reservation_id IN ("
            " SELECT reservation_id FROM budget_reservations"
            " WHERE state <> 'reserved' AND created_at < $1 LIMIT $2)"
        )
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), before, limit)
