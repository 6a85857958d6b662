"""The transactions that cross tables, each named and written once, for both SQL engines.

What one outcome writes, read in one place (each runs inside a caller's transaction):

- ``_intent_to_job`` (intent → job): the intent deleted (or, if a recovery sweep got there
  first, its ``unknown`` record deleted), the job inserted, its reservations handed over
  to it (``owner`` NULL), the idempotency key completed with the replayed answer;
- ``_queue_to_job`` (queue → job): ``_intent_to_job`` without a key to complete (the queue
  row completed it when it queued), and the ``admission_queue`` row ``dispatched``;
- ``_intent_to_unknown`` (intent → ``unknown`` record): a placeholder job with the error,
  its money reservation handed over (kept), its slot released, the key ``unknown``;
- ``_settle_terminal`` (a job turns terminal, beside its own row): the money reservation
  settled at the final cost (or released), the slot released, the completion webhook
  recorded, the settlement journal appended.

The public operations (``intent_to_job``, ``admission_to_job``, ``observe``, ``recover``,
...) open the transaction and call these; single-table steps stay with their tables
(``_budgets``, ``_idempotency``, ``_webhooks``, ``_settlements``).
"""

from __future__ import annotations

import dataclasses

from proxy.stores._budgets import BudgetsMixin
from proxy.stores._idempotency import IdempotencyMixin
from proxy.stores._settlements import append_settlement, settles_spend
from proxy.stores._sql import Tx, encode_history, job_from_row
from proxy.stores._webhooks import enqueue_delivery
from proxy.stores.records import (
    Intent,
    JobRecord,
    JobStatus,
    NewJob,
    StatusChange,
    StoredResponse,
)

INSERT_JOB = """
INSERT INTO jobs (task_id, caller, team, project, alias, pinned_slug, input_hash,
    correlation_id, request_id, idempotency_key, price_table_version,
    estimated_cost_micros, status, upstream_attempts, traceparent, submitted_by,
    submitted_at, history, last_seen_status, next_poll_at, reservation_id, slot_reservation_id,
    callback_url, price_source, estimate_low_micros, estimate_high_micros, estimate_bounded,
    api, api_ref, api_request, account)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
    $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31)
ON CONFLICT (task_id) DO NOTHING
RETURNING *"""

TAKE_INTENT = "DELETE FROM submit_intents WHERE intent_id = $1 RETURNING *"

QUEUE_DISPATCHED = (
    "UPDATE admission_queue SET state = 'dispatched', task_id = $2,"
    " finished_at = $3, error = NULL WHERE queue_id = $1"
)


class CrossingsMixin(IdempotencyMixin, BudgetsMixin):
    """The cross-table transactions' bodies, over any ``SqlBase`` connection provider."""

    async def _intent_to_job(
        self, tx: Tx, intent: Intent, job: NewJob, response: StoredResponse | None
    ) -> JobRecord:
        """Inside ``tx``: the intent dropped, the job recorded, its holds handed over to it,
        the key completed with ``response`` (if given and the request had a key).

        If a sweep already turned the intent into an ``unknown`` record (this replica was
        taken for dead during a stall), the job replaces that record.
        """
        taken = await tx.fetchrow(self.dialect.sql(TAKE_INTENT), intent.intent_id)
        if taken is None:
            await tx.execute(
                self.dialect.sql("DELETE FROM jobs WHERE task_id = $1 AND status = $2"),
                intent.placeholder,
                JobStatus.UNKNOWN.value,
            )
        recorded = await self._insert_or_existing(tx, job)
        await self._hand_over(tx, (job.reservation_id, job.slot_reservation_id))
        if response is not None and intent.idempotency_scope and intent.idempotency_key:
            await self._complete_in(
                tx, intent.idempotency_scope, intent.idempotency_key, response, intent.intent_id
            )
        return recorded

    async def _queue_to_job(
        self, tx: Tx, queue_id: str, intent: Intent, job: NewJob, now: float
    ) -> JobRecord:
        """Inside ``tx``: ``_intent_to_job`` of the dispatch's intent, the row dispatched."""
        recorded = await self._intent_to_job(tx, intent, job, None)
        await tx.execute(self.dialect.sql(QUEUE_DISPATCHED), queue_id, job.task_id, now)
        return recorded

    async def _intent_to_unknown(self, tx: Tx, intent: Intent, detail: str) -> JobRecord:
        """Inside ``tx``, the intent already taken: its ``unknown`` record (money kept, slot
        freed, key answering 409 until an operator reconciles it)."""
        job = dataclasses.replace(
            intent.job,
            task_id=intent.placeholder,
            status=JobStatus.UNKNOWN,
            next_poll_at=None,
            slot_reservation_id=None,
        )
        recorded = await self._insert_or_existing(tx, job)
        await tx.execute(
            self.dialect.sql("UPDATE jobs SET error_reason = $2 WHERE task_id = $1"),
            job.task_id,
            detail[:500],
        )
        await self._hand_over(tx, (intent.reservation_id,))
        if intent.slot_reservation_id is not None:
            await self._close_in(tx, intent.slot_reservation_id, "released", 0)
        if intent.idempotency_scope and intent.idempotency_key:
            await self._unknown_in(
                tx, intent.idempotency_scope, intent.idempotency_key, job.task_id, intent.intent_id
            )
        return dataclasses.replace(recorded, error_reason=detail[:500])

    async def _settle_terminal(self, tx: Tx, job: JobRecord) -> None:
        """In the transaction that makes ``job`` terminal: its money and slot, settled once.

        Success (or a failure billed at a price) turns the reservation into spend at the
        final cost; anything else releases it; the concurrency slot is freed. Done here,
        not after the commit, so no crash can leave a terminal job's holds open.
        """
        if job.reservation_id is not None:
            final = job.final_cost_micros or 0
            billed = job.status is JobStatus.SUCCESS or (
                job.status is JobStatus.FAILED and final > 0
            )
            await self._close_in(
                tx, job.reservation_id, "settled" if billed else "released", final if billed else 0
            )
        if job.slot_reservation_id is not None:
            await self._close_in(tx, job.slot_reservation_id, "released", 0)
        if job.callback_url is not None:  # the completion webhook, as durable as the transition
            await enqueue_delivery(tx, self.dialect, job, self.render_delivery)
        if settles_spend(job):  # last: the journal's counter lock is held until the commit
            at = job.terminal_at if job.terminal_at is not None else 0.0
            await append_settlement(tx, self.dialect, job, at)

    async def _insert_job(self, tx: Tx, job: NewJob) -> JobRecord | None:
        """Insert inside ``tx``; ``None`` if the task id is already recorded."""
        history = encode_history([StatusChange(job.status.value, job.submitted_at, "submit")])
        args = (
            job.task_id, job.caller, job.team, job.project, job.alias, job.pinned_slug,
            job.input_hash, job.correlation_id, job.request_id, job.idempotency_key,
            job.price_table_version, job.estimated_cost_micros, job.status.value,
            job.upstream_attempts, job.traceparent, job.submitted_by, job.submitted_at,
            history, job.status.value, job.next_poll_at, job.reservation_id,
            job.slot_reservation_id, job.callback_url, job.price_source,
            job.estimate_low_micros, job.estimate_high_micros, job.estimate_bounded,
            job.api, job.api_ref, job.api_request, job.account,
        )  # fmt: skip
        row = await tx.fetchrow(self.dialect.sql(INSERT_JOB), *args)
        return None if row is None else job_from_row(row)

    async def _insert_or_existing(self, tx: Tx, job: NewJob) -> JobRecord:
        """Insert inside ``tx``; the same task id twice keeps the first record."""
        recorded = await self._insert_job(tx, job)
        if recorded is not None:
            return recorded
        row = await tx.fetchrow(
            self.dialect.sql("SELECT * FROM jobs WHERE task_id = $1"), job.task_id
        )
        assert row is not None
        return job_from_row(row)
