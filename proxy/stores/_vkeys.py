"""Virtual keys, written once for both SQL engines; only hashes are stored."""

from __future__ import annotations

import json

from proxy.stores._sql import Row, SqlBase
from proxy.stores.base import DuplicateKeyError
from proxy.stores.records import VirtualKey

INSERT_KEY = """
INSERT INTO virtual_keys (key_id, key_hash, name, team, project, upstream_key_ref,
    allowed_models, created_at, revoked_at, expires_at, max_concurrent_jobs)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT DO NOTHING
RETURNING *"""


def _key_from_row(row: Row) -> VirtualKey:
    models: list[str] = json.loads(row["allowed_models"]) if row["allowed_models"] else []
    return VirtualKey(
        key_id=row["key_id"],
        key_hash=row["key_hash"],
        created_at=float(row["created_at"]),
        name=row["name"],
        team=row["team"],
        project=row["project"],
        upstream_key_ref=row["upstream_key_ref"],
        allowed_models=tuple(models),
        revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
        expires_at=None if row["expires_at"] is None else float(row["expires_at"]),
        max_concurrent_jobs=row["max_concurrent_jobs"],
    )


class VirtualKeysMixin(SqlBase):
    """``VirtualKeyStore`` over any ``SqlBase`` connection provider."""

    async def create_virtual_key(self, key: VirtualKey) -> VirtualKey:
        models = json.dumps(list(key.allowed_models), ensure_ascii=False)
        async with self._write() as tx:
            row = await tx.fetchrow(
                self.dialect.sql(INSERT_KEY), key.key_id, key.key_hash, key.name, key.team,
                key.project, key.upstream_key_ref, models, key.created_at, key.revoked_at,
                key.expires_at, key.max_concurrent_jobs,
            )  # fmt: skip
        if row is None:
            raise DuplicateKeyError(key.key_id)
        return _key_from_row(row)

    async def get_virtual_key(self, key_id: str) -> VirtualKey | None:
        sql = self.dialect.sql("SELECT * FROM virtual_keys WHERE key_id = $1")
        async with self._read(inline=True) as tx:
            row = await tx.fetchrow(sql, key_id)
        return None if row is None else _key_from_row(row)

    async def get_virtual_key_by_hash(self, key_hash: str) -> VirtualKey | None:
        sql = self.dialect.sql("SELECT * FROM virtual_keys WHERE key_hash = $1")
        async with self._read(inline=True) as tx:
            row = await tx.fetchrow(sql, key_hash)
        return None if row is None else _key_from_row(row)

    async def revoke_virtual_key(self, key_id: str, at: float) -> bool:
        sql = "UPDATE virtual_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL"
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), key_id, at) > 0

    async def list_virtual_keys(
        self, *, team: str | None = None, include_revoked: bool = False
    ) -> list[VirtualKey]:
        where: list[str] = []
        args: list[object] = []
        if team is not None:
            args.append(team)
            where.append("team = $1")
        if not include_revoked:
            where.append("revoked_at IS NULL")
        sql = "SELECT * FROM virtual_keys"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, key_id"
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), *args)
        return [_key_from_row(r) for r in rows]
