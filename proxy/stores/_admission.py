"""The admission queue, written once for both SQL engines.

Every decision about a team's upstream concurrency is taken in one transaction that
first locks the team's row in ``admission_teams`` (PostgreSQL row lock; SQLite has one
writer), so replicas never both see the same free slot:

- ``admission_admit``: a submit that passed every stage either gets its write-ahead
  intent (a slot is free and nobody of its team waits ahead: send now) or becomes a
  queue row; the row takes over the request's reservations (``owner`` NULL, so the
  recovery sweep of a dead replica never releases them) and its idempotency key is
  completed with the queued answer, all in that transaction;
- ``admission_claim``: the dispatcher marks a queued row ``dispatching`` and writes the
  intent of its send in the same transaction, so a crash mid-dispatch is recovered
  through the intent (an ``unknown`` record), never sent twice;
- the outcome (``admission_to_job``, ``_to_unknown``, ``_requeue``, ``_refused``) removes
  the intent and updates the row in one transaction, as ``proxy.stores._intents`` does
  (queue → job is written in ``proxy.stores._crossings``).

In flight for a team: its ``vk:`` callers' jobs still pending or processing (they were
sent with the proxy's own upstream key) plus their intents (sends in progress).

A submit billed to a Modellix account with a concurrency (``account_limit``) also needs a
free slot of its account, counted the same way over the account's jobs and intents (every
team billing to it), and nobody of the account queued ahead; the account's row in
``admission_accounts`` is locked first, then the team's, in every transaction alike.

A submit billed to an account with a submit rate (``account_rpm``) also needs fewer than that
many of the account's submits let go in the last ``RATE_WINDOW_SECONDS``
(``admission_account_sends``: one row per send, written with its intent, counted and trimmed
under the account's lock), so replicas share one exact per-minute allowance.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence

from proxy.stores._crossings import TAKE_INTENT
from proxy.stores._intents import (
    OPEN_INTENT,
    IntentsMixin,
    intent_from_row,
    job_from_json,
    job_json,
)
from proxy.stores._sql import Row, Tx
from proxy.stores._webhooks import enqueue_delivery
from proxy.stores.admission_records import (
    Admission,
    Cancel,
    DispatchClaim,
    QueuedSubmit,
    QueueHead,
    QueueState,
    QueueStats,
    row_as_job,
)
from proxy.stores.records import Intent, JobRecord, NewJob, StoredResponse

LOCK_TEAM = """
INSERT INTO admission_teams (team, touched_at) VALUES ($1, $2)
ON CONFLICT (team) DO UPDATE SET touched_at = excluded.touched_at"""

QUEUED_COUNT = "SELECT COUNT(*) AS n FROM admission_queue WHERE team = $1 AND state = 'queued'"

LOCK_ACCOUNT = """
INSERT INTO admission_accounts (account, touched_at) VALUES ($1, $2)
ON CONFLICT (account) DO UPDATE SET touched_at = excluded.touched_at"""

ACCOUNT_QUEUED = "SELECT COUNT(*) AS n FROM admission_queue WHERE account = $1 AND state = 'queued'"

RATE_WINDOW_SECONDS = 60.0  # Modellix counts requests per minute
TRIM_SENDS = "DELETE FROM admission_account_sends WHERE account = $1 AND sent_at <= $2"
RECENT_SENDS = "SELECT COUNT(*) AS n FROM admission_account_sends WHERE account = $1"
RECORD_SEND = "INSERT INTO admission_account_sends (account, sent_at) VALUES ($1, $2)"

INSERT_ROW = """
INSERT INTO admission_queue (queue_id, team, caller, state, enqueued_at, not_before, path, body,
    headers, job, idempotency_scope, idempotency_key, reservation_id, slot_reservation_id,
    intent_id, task_id, attempts, dispatched_at, finished_at, error, account)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
    $20, $21)"""

# A team's upstream tasks in flight: its vk: jobs pending or processing, plus their intents
# (sends under way). The {...} parts are fixed expressions chosen per engine and team.
IN_FLIGHT = """
SELECT (SELECT COUNT(*) FROM jobs WHERE {job_team} AND terminal_at IS NULL
            AND status IN ('pending', 'processing') AND caller LIKE 'vk:%')
     + (SELECT COUNT(*) FROM submit_intents WHERE {intent_team}
            AND {intent_caller} LIKE 'vk:%') AS n"""

GET_ROW = "SELECT * FROM admission_queue WHERE queue_id = $1"

READY = """
SELECT queue_id, team, caller, enqueued_at, account FROM admission_queue
WHERE state = 'queued' AND not_before <= $1 ORDER BY enqueued_at, queue_id LIMIT $2"""

STATS = """
SELECT team, COUNT(*) AS depth, MIN(enqueued_at) AS oldest FROM admission_queue
WHERE state = 'queued' GROUP BY team ORDER BY team"""

ORPHANS = """
SELECT q.queue_id, q.intent_id FROM admission_queue q
WHERE q.state = 'dispatching'
  AND NOT EXISTS (SELECT 1 FROM submit_intents i WHERE i.intent_id = q.intent_id)
LIMIT $1"""

TURN = """
INSERT INTO admission_turns (team, caller, last_dispatched_at) VALUES ($1, $2, $3)
ON CONFLICT (team, caller) DO UPDATE SET last_dispatched_at = excluded.last_dispatched_at"""

SET_STATE = """
UPDATE admission_queue SET state = $2, task_id = COALESCE($3, task_id), finished_at = $4,
    error = $5
WHERE queue_id = $1"""

# A row whose dispatch ended without a task id of its own: the unknown record stands for it.
SET_UNKNOWN = """
UPDATE admission_queue SET state = 'unknown', task_id = $2, finished_at = $3, error = $4
WHERE queue_id = $1 AND state = 'dispatching' AND intent_id = $5"""

DISMISS = """
UPDATE admission_queue SET state = 'cancelled'
WHERE queue_id = $1 AND state IN ('failed', 'expired')"""

DROP_KEY = """
DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND task_id = $3"""


def row_to_queued(row: Row) -> QueuedSubmit:
    raw_headers = row["headers"]
    headers: dict[str, str] = json.loads(raw_headers) if raw_headers else {}
    return QueuedSubmit(
        queue_id=row["queue_id"],
        team=row["team"],
        caller=row["caller"],
        state=QueueState(row["state"]),
        enqueued_at=float(row["enqueued_at"]),
        not_before=float(row["not_before"]),
        path=row["path"],
        body=bytes(row["body"]),
        headers=headers,
        job=job_from_json(row["job"]),
        idempotency_scope=row["idempotency_scope"],
        idempotency_key=row["idempotency_key"],
        reservation_id=row["reservation_id"],
        slot_reservation_id=row["slot_reservation_id"],
        intent_id=row["intent_id"],
        task_id=row["task_id"],
        attempts=int(row["attempts"]),
        dispatched_at=None if row["dispatched_at"] is None else float(row["dispatched_at"]),
        finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
        error=row["error"],
    )


class AdmissionMixin(IntentsMixin):
    """``AdmissionStore`` over any ``SqlBase`` connection provider."""

    # -- the count -------------------------------------------------------------------------

    def _intent_field(self, name: str) -> str:
        """The expression of the intent's ``job`` JSON field ``name``, in this engine."""
        if self.dialect.name == "postgres":
            return f"job->>'{name}'"
        return f"json_extract(job, '$.{name}')"

    def _in_flight_sql(self, job_match: str, intent_match: str) -> str:
        return (
            IN_FLIGHT.replace("{job_team}", job_match)
            .replace("{intent_team}", intent_match)
            .replace("{intent_caller}", self._intent_field("caller"))
        )

    async def _in_flight(self, tx: Tx, team: str) -> int:
        i_team = self._intent_field("team")
        if team:
            sql = self._in_flight_sql("team = $1", f"{i_team} = $1")
        else:  # no team: NULL in the ledger; $1 is still bound (and unused)
            sql = self._in_flight_sql("team IS NULL AND $1 = ''", f"{i_team} IS NULL")
        row = await tx.fetchrow(self.dialect.sql(sql), team)
        return int(row["n"]) if row else 0

    async def _account_in_flight(self, tx: Tx, account: str) -> int:
        """The account's upstream tasks in flight: ``_in_flight`` over its jobs and intents."""
        sql = self._in_flight_sql("account = $1", f"{self._intent_field('account')} = $1")
        row = await tx.fetchrow(self.dialect.sql(sql), account)
        return int(row["n"]) if row else 0

    async def _account_free(
        self,
        tx: Tx,
        account: str | None,
        limit: int | None,
        now: float,
        *,
        queued_ok: bool,
        rpm: int | None = None,
    ) -> bool:
        """Inside ``tx``, with the account's row locked first: whether the account has a free
        slot and, with ``rpm``, a send left this minute (and, unless ``queued_ok``, nobody of
        it queued ahead). True when not gated."""
        if account is None or (limit is None and rpm is None):
            return True
        await tx.execute(self.dialect.sql(LOCK_ACCOUNT), account, now)
        if not queued_ok:
            row = await tx.fetchrow(self.dialect.sql(ACCOUNT_QUEUED), account)
            if row is not None and int(row["n"]) > 0:
                return False
        if rpm is not None and await self._recent_sends(tx, account, now) >= rpm:
            return False
        return limit is None or await self._account_in_flight(tx, account) < limit

    async def _recent_sends(self, tx: Tx, account: str, now: float) -> int:
        await tx.execute(self.dialect.sql(TRIM_SENDS), account, now - RATE_WINDOW_SECONDS)
        row = await tx.fetchrow(self.dialect.sql(RECENT_SENDS), account)
        return int(row["n"]) if row else 0

    async def _count_send(self, tx: Tx, account: str | None, rpm: int | None, now: float) -> None:
        if account is not None and rpm is not None:
            await tx.execute(self.dialect.sql(RECORD_SEND), account, now)

    async def admission_account_sends(self, account: str, now: float) -> int:
        sql = RECENT_SENDS + " AND sent_at > $2"
        async with self._read() as tx:
            row = await tx.fetchrow(self.dialect.sql(sql), account, now - RATE_WINDOW_SECONDS)
        return int(row["n"]) if row else 0

    async def admission_account_in_flight(self, account: str) -> int:
        async with self._read() as tx:
            return await self._account_in_flight(tx, account)

    async def _lock_team(self, tx: Tx, team: str, now: float) -> None:
        await tx.execute(self.dialect.sql(LOCK_TEAM), team, now)

    async def admission_in_flight(self, team: str) -> int:
        async with self._read() as tx:
            return await self._in_flight(tx, team)

    # -- admit -----------------------------------------------------------------------------

    async def _write_intent(self, tx: Tx, intent: Intent) -> None:
        await tx.execute(
            self.dialect.sql(OPEN_INTENT),
            intent.intent_id, intent.owner, intent.created_at, job_json(intent.job),
            intent.idempotency_scope, intent.idempotency_key, intent.reservation_id,
            intent.slot_reservation_id,
        )  # fmt: skip

    async def _enqueue_in(
        self, tx: Tx, intent: Intent, entry: QueuedSubmit, stored: StoredResponse | None
    ) -> None:
        """The queue row takes over the request's reservations and completes its key."""
        await tx.execute(
            self.dialect.sql(INSERT_ROW),
            entry.queue_id, entry.team, entry.caller, QueueState.QUEUED.value, entry.enqueued_at,
            entry.not_before, entry.path, entry.body,
            json.dumps(entry.headers, ensure_ascii=False), job_json(entry.job),
            entry.idempotency_scope, entry.idempotency_key, entry.reservation_id,
            entry.slot_reservation_id, None, None, entry.attempts, None, None, entry.error,
            entry.job.account,
        )  # fmt: skip
        await self._hand_over(tx, (entry.reservation_id, entry.slot_reservation_id))
        scope, key = entry.idempotency_scope, entry.idempotency_key
        if stored is not None and scope and key:
            await self._complete_in(tx, scope, key, stored, intent.intent_id)

    async def admission_admit(
        self,
        intent: Intent,
        entry: QueuedSubmit,
        stored: StoredResponse | None,
        *,
        limit: int,
        max_queue: int,
        now: float,
        account_limit: int | None = None,
        account_rpm: int | None = None,
    ) -> Admission:
        async with self._write() as tx:
            account = entry.job.account
            account_free = await self._account_free(
                tx, account, account_limit, now, queued_ok=False, rpm=account_rpm
            )
            await self._lock_team(tx, entry.team, now)
            row = await tx.fetchrow(self.dialect.sql(QUEUED_COUNT), entry.team)
            queued = int(row["n"]) if row else 0
            if account_free and queued == 0 and await self._in_flight(tx, entry.team) < limit:
                await self._check_holds(tx, intent)
                await self._write_intent(tx, intent)
                await self._count_send(tx, account, account_rpm, now)
                return Admission.SEND
            if queued >= max_queue:
                return Admission.FULL
            await self._check_holds(tx, intent)
            await self._enqueue_in(tx, intent, entry, stored)
            return Admission.QUEUED

    async def admission_requeue_intent(
        self, intent: Intent, entry: QueuedSubmit, stored: StoredResponse | None
    ) -> bool:
        """A direct send the upstream refused for concurrency (429): nothing was created;
        the intent becomes a queue row. False if a sweep already took the intent."""
        async with self._write() as tx:
            if await tx.fetchrow(self.dialect.sql(TAKE_INTENT), intent.intent_id) is None:
                return False
            await self._enqueue_in(tx, intent, entry, stored)
            return True

    # -- dispatch --------------------------------------------------------------------------

    async def admission_ready(self, now: float, limit: int) -> list[QueueHead]:
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(READY), now, limit)
        return [
            QueueHead(r["queue_id"], r["team"], r["caller"], float(r["enqueued_at"]), r["account"])
            for r in rows
        ]

    async def admission_turns(self, team: str) -> dict[str, float]:
        sql = "SELECT caller, last_dispatched_at FROM admission_turns WHERE team = $1"
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), team)
        return {r["caller"]: float(r["last_dispatched_at"]) for r in rows}

    async def admission_claim(
        self,
        queue_id: str,
        owner: str,
        now: float,
        limit: int,
        account_limit: int | None = None,
        account_rpm: int | None = None,
    ) -> DispatchClaim | None:
        """Mark the row dispatching and write its intent, if it is still queued and its team
        (and account, when ``account_limit`` is given) has a free slot (and the account, with
        ``account_rpm``, a send left this minute); ``None`` otherwise."""
        async with self._write() as tx:
            head = await tx.fetchrow(
                self.dialect.sql("SELECT team, account FROM admission_queue WHERE queue_id = $1"),
                queue_id,
            )
            if head is None:
                return None
            team = str(head["team"])
            account = head["account"]
            free = await self._account_free(
                tx, account, account_limit, now, queued_ok=True, rpm=account_rpm
            )
            if not free:
                return None
            await self._lock_team(tx, team, now)
            found = await tx.fetchrow(
                self.dialect.sql(GET_ROW + " AND state = 'queued'" + self.dialect.lock_rows),
                queue_id,
            )
            if found is None or await self._in_flight(tx, team) >= limit:
                return None
            row = row_to_queued(found)
            intent = Intent(
                intent_id=uuid.uuid4().hex,
                owner=owner,
                created_at=now,
                job=dataclasses.replace(row.job, submitted_by=owner),
                reservation_id=row.reservation_id,
                slot_reservation_id=row.slot_reservation_id,
            )
            await self._write_intent(tx, intent)
            await self._count_send(tx, account, account_rpm, now)
            await tx.execute(
                self.dialect.sql(
                    "UPDATE admission_queue SET state = 'dispatching', intent_id = $2,"
                    " attempts = attempts + 1, dispatched_at = $3 WHERE queue_id = $1"
                ),
                queue_id,
                intent.intent_id,
                now,
            )
            await tx.execute(self.dialect.sql(TURN), team, row.caller, now)
        return DispatchClaim(row, intent)

    async def admission_to_job(
        self, queue_id: str, intent: Intent, job: NewJob, now: float
    ) -> JobRecord:
        """The upstream created ``job.task_id``: the job, the row dispatched, one commit."""
        async with self._write() as tx:
            return await self._queue_to_job(tx, queue_id, intent, job, now)

    async def admission_to_unknown(
        self, queue_id: str, intent: Intent, detail: str, now: float
    ) -> JobRecord | None:
        """Sent without a usable answer: the ``unknown`` record (money kept), row unknown."""
        async with self._write() as tx:
            taken = await tx.fetchrow(self.dialect.sql(TAKE_INTENT), intent.intent_id)
            record = None
            if taken is not None:
                record = await self._intent_to_unknown(tx, intent_from_row(taken), detail)
            await tx.execute(
                self.dialect.sql(SET_UNKNOWN),
                queue_id, intent.placeholder, now, detail[:500], intent.intent_id,
            )  # fmt: skip
        return record

    async def admission_requeue(
        self, queue_id: str, intent: Intent, not_before: float, error: str, now: float
    ) -> bool:
        """Nothing was created (an upstream 429, or never sent): queued again after
        ``not_before``, its holds kept. False if a sweep had made it an unknown record."""
        async with self._write() as tx:
            if not await self._take_or_unknown(tx, queue_id, intent, error, now):
                return False
            await tx.execute(
                self.dialect.sql(
                    "UPDATE admission_queue SET state = 'queued', intent_id = NULL,"
                    " not_before = $2, error = $3 WHERE queue_id = $1"
                ),
                queue_id,
                not_before,
                error[:500],
            )
        return True

    async def _take_or_unknown(
        self, tx: Tx, queue_id: str, intent: Intent, error: str, now: float
    ) -> bool:
        """Inside ``tx``: drop the row's intent; if a sweep had already made it an unknown
        record, mark the row unknown instead and say False."""
        if await tx.fetchrow(self.dialect.sql(TAKE_INTENT), intent.intent_id) is not None:
            return True
        await tx.execute(
            self.dialect.sql(SET_UNKNOWN),
            queue_id, intent.placeholder, now, error[:500], intent.intent_id,
        )  # fmt: skip
        return False

    async def admission_refused(
        self, queue_id: str, intent: Intent, error: str, now: float
    ) -> bool:
        """The upstream definitely refused it: holds released, the row failed."""
        async with self._write() as tx:
            if not await self._take_or_unknown(tx, queue_id, intent, error, now):
                return False
            for reservation_id in (intent.reservation_id, intent.slot_reservation_id):
                if reservation_id is not None:
                    await self._close_in(tx, reservation_id, "released", 0)
            await tx.execute(
                self.dialect.sql(SET_STATE),
                queue_id, QueueState.FAILED.value, None, now, error[:500],
            )  # fmt: skip
            await self._left_unsent(tx, queue_id)
        return True

    # -- cancel, expire, recover, purge ----------------------------------------------------

    async def _drop_queued(
        self, tx: Tx, queue_id: str, state: QueueState, error: str, now: float
    ) -> Cancel:
        found = await tx.fetchrow(self.dialect.sql(GET_ROW + self.dialect.lock_rows), queue_id)
        if found is None:
            return Cancel.NOT_FOUND
        row = row_to_queued(found)
        if row.state is not QueueState.QUEUED:
            return Cancel.TOO_LATE
        for reservation_id in (row.reservation_id, row.slot_reservation_id):
            if reservation_id is not None:
                await self._close_in(tx, reservation_id, "released", 0)
        if row.idempotency_scope and row.idempotency_key:
            await tx.execute(
                self.dialect.sql(DROP_KEY), row.idempotency_scope, row.idempotency_key, queue_id
            )
        await tx.execute(self.dialect.sql(SET_STATE), queue_id, state.value, None, now, error[:500])
        if state is QueueState.EXPIRED:
            await self._left_unsent(tx, queue_id)
        return Cancel.CANCELLED

    async def _left_unsent(self, tx: Tx, queue_id: str) -> None:
        """In the transaction that ends a row refused or expired in the queue: the completion
        webhook its job asked for (``failed``), recorded as a job turning terminal records it."""
        found = await tx.fetchrow(self.dialect.sql(GET_ROW), queue_id)
        if found is not None:
            await enqueue_delivery(
                tx, self.dialect, row_as_job(row_to_queued(found)), self.render_delivery
            )

    async def admission_cancel(self, queue_id: str, error: str, now: float) -> Cancel:
        """Cancel a queued row: reservations released, idempotency key forgotten."""
        async with self._write() as tx:
            return await self._drop_queued(tx, queue_id, QueueState.CANCELLED, error, now)

    async def admission_dismiss(self, queue_id: str) -> bool:
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(DISMISS), queue_id) > 0

    async def admission_expire(
        self, team: str, before: float, error: str, now: float, limit: int = 100
    ) -> list[QueuedSubmit]:
        """Expire ``team``'s rows queued before ``before``: holds released; the rows."""
        sql = (
            "SELECT queue_id FROM admission_queue WHERE team = $1 AND state = 'queued'"
            " AND enqueued_at < $2 ORDER BY enqueued_at LIMIT $3"
        )
        async with self._read() as tx:
            ids = [
                r["queue_id"] for r in await tx.fetch(self.dialect.sql(sql), team, before, limit)
            ]
        expired: list[QueuedSubmit] = []
        for queue_id in ids:
            async with self._write() as tx:
                if await self._drop_queued(tx, queue_id, QueueState.EXPIRED, error, now) is (
                    Cancel.CANCELLED
                ):
                    found = await tx.fetchrow(self.dialect.sql(GET_ROW), queue_id)
                    if found is not None:
                        expired.append(row_to_queued(found))
        return expired

    async def admission_orphans(self, now: float, limit: int = 100) -> int:
        """Rows left ``dispatching`` by a replica that died mid-send: the recovery sweep
        turned their intent into an ``unknown`` record; the rows say so. How many."""
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(ORPHANS), limit)
        done = 0
        for r in rows:
            placeholder = f"unknown:{r['intent_id']}"
            async with self._write() as tx:
                done += await tx.execute(
                    self.dialect.sql(
                        "UPDATE admission_queue SET state = 'unknown', task_id = $2,"
                        " finished_at = $3, error = $4 WHERE queue_id = $1"
                        " AND state = 'dispatching' AND intent_id = $5"
                    ),
                    r["queue_id"],
                    placeholder,
                    now,
                    "the replica dispatching this submit stopped before recording the answer; "
                    "a task may exist upstream",
                    r["intent_id"],
                )
        return done

    async def admission_purge(self, before: float, limit: int) -> int:
        sql = (
            "DELETE FROM admission_queue WHERE queue_id IN ("
            " SELECT queue_id FROM admission_queue WHERE state NOT IN ('queued', 'dispatching')"
            " AND finished_at < $1 LIMIT $2)"
        )
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), before, limit)

    # -- reads -----------------------------------------------------------------------------

    async def admission_get(self, queue_id: str) -> QueuedSubmit | None:
        async with self._read() as tx:
            found = await tx.fetchrow(self.dialect.sql(GET_ROW), queue_id)
        return None if found is None else row_to_queued(found)

    async def admission_stats(self) -> list[QueueStats]:
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(STATS))
        return [
            QueueStats(
                r["team"], int(r["depth"]), None if r["oldest"] is None else float(r["oldest"])
            )
            for r in rows
        ]

    async def admission_rows(
        self, *, team: str | None = None, states: Sequence[QueueState] = (), limit: int = 1000
    ) -> list[QueuedSubmit]:
        """Rows, oldest first (tests and the admin view)."""
        clauses: list[str] = []
        args: list[object] = []
        if team is not None:
            args.append(team)
            clauses.append(f"team = ${len(args)}")
        if states:
            marks = []
            for state in states:
                args.append(state.value)
                marks.append(f"${len(args)}")
            clauses.append(f"state IN ({', '.join(marks)})")
        args.append(limit)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        order = f" ORDER BY enqueued_at, queue_id LIMIT ${len(args)}"
        sql = f"SELECT * FROM admission_queue{where}{order}"  # noqa: S608 (placeholders only)
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), *args)
        return [row_to_queued(r) for r in rows]
