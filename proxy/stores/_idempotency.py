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
INSERT INTO idempotency_keys (scope, key, fingerprint, state, claimed_at, expires_at)
VALUES ($1, $2, $3, 'in_flight', $4, $5)
ON CONFLICT (scope, key) DO UPDATE SET
    fingerprint = excluded.fingerprint, state = 'in_flight', claimed_at = excluded.claimed_at,
    expires_at = excluded.expires_at, response_status = NULL, response_headers = NULL,
    response_body = NULL, task_id = NULL
WHERE idempotency_keys.expires_at <= $4
RETURNING scope"""

GET = "SELECT * FROM idempotency_keys WHERE scope = $1 AND key = $2"

TO_UNKNOWN = """
UPDATE idempotency_keys SET state = 'unknown'
WHERE scope = $1 AND key = $2 AND state = 'in_flight' AND claimed_at <= $3"""

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
    ) -> Claim:
        sql = self.dialect.sql
        for _ in range(_MAX_ROUNDS):
            async with self._write() as tx:
                won = await tx.fetchrow(sql(CLAIM), scope, key, fingerprint, now, now + ttl_seconds)
                if won is not None:
                    return Claim(outcome=ClaimOutcome.NEW)
                row = await tx.fetchrow(sql(GET), scope, key)
                if row is not None:
                    return await self._existing(tx, row, fingerprint, now - in_flight_timeout)
            # The key was released between our insert and our read: claim again.
        raise RuntimeError(f"idempotency key {scope}/{key} kept changing while claimed")

    async def _existing(self, tx: Tx, row: Row, fingerprint: str, stale_before: float) -> Claim:
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
        if await tx.execute(self.dialect.sql(TO_UNKNOWN), row["scope"], row["key"], stale_before):
            return Claim(outcome=ClaimOutcome.UNKNOWN, task_id=task_id)
        return Claim(outcome=ClaimOutcome.IN_FLIGHT, task_id=task_id)

    async def complete(self, scope: str, key: str, response: StoredResponse) -> bool:
        sql = (
            "UPDATE idempotency_keys SET state = 'complete', response_status = $3,"
            " response_headers = $4, response_body = $5, task_id = $6"
            " WHERE scope = $1 AND key = $2 AND state <> 'complete'"
        )
        headers = json.dumps(response.headers, ensure_ascii=False)
        async with self._write() as tx:
            changed = await tx.execute(
                self.dialect.sql(sql), scope, key, response.status, headers, response.body,
                response.task_id,
            )  # fmt: skip
        return changed > 0

    async def mark_unknown(self, scope: str, key: str) -> bool:
        sql = (
            "UPDATE idempotency_keys SET state = 'unknown'"
            " WHERE scope = $1 AND key = $2 AND state = 'in_flight'"
        )
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), scope, key) > 0

    async def release(self, scope: str, key: str) -> bool:
        sql = "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND state <> 'complete'"
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), scope, key) > 0

    async def purge_expired(self, now: float) -> int:
        sql = "DELETE FROM idempotency_keys WHERE expires_at <= $1"
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), now)
