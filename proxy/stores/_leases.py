"""Named leases shared by replicas, written once for both SQL engines.

A lease is a row ``(name, owner, expires_at)``. ``acquire_lease`` is one atomic
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` that succeeds only if the lease is
free (absent or expired) or already held by the same owner (a renewal), so of
any number of concurrent callers on any replica at most one holds it.
"""

from __future__ import annotations

from proxy.stores._sql import SqlBase

ACQUIRE = """
INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, $4)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE leases.expires_at <= $3 OR leases.owner = $2
RETURNING name"""


class LeasesMixin(SqlBase):
    """``LeaseStore`` over any ``SqlBase`` connection provider."""

    async def acquire_lease(self, name: str, owner: str, now: float, until: float) -> bool:
        async with self._write() as tx:
            row = await tx.fetchrow(self.dialect.sql(ACQUIRE), name, owner, now, until)
        return row is not None

    async def release_lease(self, name: str, owner: str) -> bool:
        sql = "DELETE FROM leases WHERE name = $1 AND owner = $2"
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), name, owner) > 0
