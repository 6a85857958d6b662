"""Idempotency keys, written once for both SQL engines.

A key is a row ``(scope, key)`` in state ``in_flight``, ``complete`` or ``unknown``.
``claim`` is one atomic ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired``: it
returns a row only to the single claimer that created (or took over an expired)
key; everyone else reads the existing row and is told what it holds.
"""

from __future__ import annotations

import json

from proxy.stores._sql import Row, SqlBase, Tx
from proxy.stores.base import DEFAULT_IDEMPOTENCY_TTL, DEFAULT_IN_FLIGHT_TIMEOUT
from proxy.stores.records import Claim, ClaimOutcome, StoredResponse

IN_FLIGHT = "in_flight"
COMPLETE = "complete"
UNKNOWN = "unknown"

CLAIM = """
INSERT INTO idempotency_keys (scope, key, fingerprint, state, claimed_at, expires_at, claim_id,
    owner)
VALUES ($1, $2, $3, 'in_flight', $4, $5, $6, $7)
ON CONFLICT (scope, key) DO UPDATE SET
    fingerprint = excluded.fingerprint, state = 'in_flight', claimed_at = excluded.claimed_at,
    expires_at = excluded.expires_at, response_status = NULL, response_headers = NULL,
    response_body = NULL, task_id = NULL, claim_id = excluded.claim_id, owner = excluded.owner
WHERE idempotency_keys.expires_at <= $4
RETURNING scope"""

GET = "SELECT * FROM idempotency_keys WHERE scope = $1 AND key = $2"

INTENT_FOR_KEY = """
SELECT intent_id FROM submit_intents WHERE idempotency_scope = $1 AND idempotency_key = $2"""

RECLAIM = """
UPDATE idempotency_keys SET fingerprint = $3, claimed_at = $4, expires_at = $5, claim_id = $6,
    owner = $7
WHERE scope = $1 AND key = $2 AND state = 'in_flight'"""

# Resolving a claim: given a claim id ($3), only that very claim, never a newer one of the
# same key ('' or a claim made without an id: any).
COMPLETE_CLAIM = """
UPDATE idempotency_keys SET state = 'complete', response_status = $4, response_headers = $5,
    response_body = $6, task_id = $7, owner = NULL
WHERE scope = $1 AND key = $2 AND state <> 'complete'
  AND ($3 = '' OR claim_id IS NULL OR claim_id = $3)"""

UNKNOWN_CLAIM = """
UPDATE idempotency_keys SET state = 'unknown', task_id = COALESCE($4, task_id), owner = NULL
WHERE scope = $1 AND key = $2 AND state = 'in_flight'
  AND ($3 = '' OR claim_id IS NULL OR claim_id = $3)"""

RELEASE_CLAIM = """
DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND state <> 'complete'
  AND ($3 = '' OR claim_id IS NULL OR claim_id = $3)"""

_MAX_ROUNDS = 5


class IdempotencyMixin(SqlBase):
    """``IdempotencyStore`` over any ``SqlBase`` connection provider."""

    async def claim(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        now: float,
        ttl_seconds: float = DEFAULT_IDEMPOTENCY_TTL,
        in_flight_timeout: float = DEFAULT_IN_FLIGHT_TIMEOUT,
        *,
        claim_id: str | None = None,
        owner: str | None = None,
    ) -> Claim:
        sql = self.dialect.sql
        for _ in range(_MAX_ROUNDS):
            async with self._write(inline=True) as tx:
                won = await tx.fetchrow(
                    sql(CLAIM), scope, key, fingerprint, now, now + ttl_seconds, claim_id, owner
                )
                if won is not None:
                    return Claim(outcome=ClaimOutcome.NEW)
                row = await tx.fetchrow(sql(GET), scope, key)
                if row is not None:
                    return await self._existing(
                        tx,
                        row,
                        fingerprint,
                        now,
                        now - in_flight_timeout,
                        now + ttl_seconds,
                        (claim_id, owner),
                    )
            # The key was released between our insert and our read: claim again.
        raise RuntimeError(f"idempotency key {scope}/{key} kept changing while claimed")

    async def _existing(
        self,
        tx: Tx,
        row: Row,
        fingerprint: str,
        now: float,
        stale_before: float,
        expires_at: float,
        holder: tuple[str | None, str | None],
    ) -> Claim:
        task_id: str | None = row["task_id"]
        if row["fingerprint"] != fingerprint:
            return Claim(outcome=ClaimOutcome.MISMATCH, task_id=task_id)
        if row["state"] == COMPLETE:
            headers: dict[str, str] = json.loads(row["response_headers"] or "{}")
            response = StoredResponse(
                status=int(row["response_status"]),
                headers=headers,
                body=bytes(row["response_body"] or b""),
                task_id=task_id,
            )
            return Claim(outcome=ClaimOutcome.REPLAY, response=response, task_id=task_id)
        if row["state"] == UNKNOWN:
            return Claim(outcome=ClaimOutcome.UNKNOWN, task_id=task_id)
        if row["claimed_at"] > stale_before:
            return Claim(outcome=ClaimOutcome.IN_FLIGHT, task_id=task_id)
        # In flight for too long. A submit writes its intent before anything is sent, and
        # the intent goes only with its recorded outcome: with no intent left, the first
        # request died (or was refused) before sending, so the key can be claimed afresh.
        sent = await tx.fetchrow(self.dialect.sql(INTENT_FOR_KEY), row["scope"], row["key"])
        if sent is None:
            await tx.execute(
                self.dialect.sql(RECLAIM),
                row["scope"],
                row["key"],
                fingerprint,
                now,
                expires_at,
                *holder,
            )
            return Claim(outcome=ClaimOutcome.NEW)
        return Claim(outcome=ClaimOutcome.IN_FLIGHT, task_id=task_id)

    async def complete(self, scope: str, key: str, response: StoredResponse) -> bool:
        async with self._write(inline=True) as tx:
            return await self._complete_in(tx, scope, key, response)

    async def mark_unknown(self, scope: str, key: str) -> bool:
        async with self._write(inline=True) as tx:
            return await self._unknown_in(tx, scope, key, None)

    async def release(self, scope: str, key: str, claim_id: str | None = None) -> bool:
        async with self._write(inline=True) as tx:
            return await self._release_in(tx, scope, key, claim_id)

    async def _complete_in(
        self,
        tx: Tx,
        scope: str,
        key: str,
        response: StoredResponse,
        claim_id: str | None = None,
    ) -> bool:
        sql = COMPLETE_CLAIM
        headers = json.dumps(response.headers, ensure_ascii=False)
        changed = await tx.execute(
            self.dialect.sql(sql), scope, key, claim_id or "", response.status, headers,
            response.body, response.task_id,
        )  # fmt: skip
        return changed > 0

    async def _unknown_in(
        self, tx: Tx, scope: str, key: str, task_id: str | None, claim_id: str | None = None
    ) -> bool:
        sql = UNKNOWN_CLAIM
        return await tx.execute(self.dialect.sql(sql), scope, key, claim_id or "", task_id) > 0

    async def _release_in(self, tx: Tx, scope: str, key: str, claim_id: str | None = None) -> bool:
        sql = RELEASE_CLAIM
        return await tx.execute(self.dialect.sql(sql), scope, key, claim_id or "") > 0

    async def purge_expired(self, now: float) -> int:
        sql = "DELETE FROM idempotency_keys WHERE expires_at <= $1"
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), now)

    async def purge_idempotency_keys(self, now: float, claimed_before: float, limit: int) -> int:
        sql = (
            "DELETE FROM idempotency_keys WHERE (scope, key) IN ("
            " SELECT scope, key FROM idempotency_keys"
            " WHERE expires_at <= $1 AND claimed_at <= $2 LIMIT $3)"
            " AND expires_at <= $1 AND claimed_at <= $2"
        )
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), now, claimed_before, limit)
