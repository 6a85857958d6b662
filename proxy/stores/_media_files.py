"""Which proxy key uploaded each media file, written once for both SQL engines.

Every upload goes upstream with the one shared upstream key, so the upstream's File API
sees a single team; this table is how the proxy tells one proxy key's files from another's.
"""

from __future__ import annotations

from collections.abc import Iterable

from proxy.stores._sql import SqlBase

INSERT_FILE = """
INSERT INTO media_files (file_id, key_id, team, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (file_id) DO NOTHING"""


class MediaFilesMixin(SqlBase):
    """``MediaFileStore`` over any ``SqlBase`` connection provider."""

    async def record_media_file(
        self, file_id: str, key_id: str, team: str | None, now: float
    ) -> None:
        async with self._write() as tx:
            await tx.execute(self.dialect.sql(INSERT_FILE), file_id, key_id, team, now)

    async def media_file_owner(self, file_id: str) -> str | None:
        sql = self.dialect.sql("SELECT key_id FROM media_files WHERE file_id = $1")
        async with self._read() as tx:
            row = await tx.fetchrow(sql, file_id)
        return None if row is None else str(row["key_id"])

    async def media_files_of(self, key_id: str, file_ids: Iterable[str]) -> set[str]:
        sql = "SELECT file_id AS id FROM media_files WHERE key_id = $1 AND file_id IN ({marks})"
        return await self._select_among(sql, (key_id,), file_ids)

    async def purge_media_files(self, before: float, limit: int) -> int:
        sql = (
            "DELETE FROM media_files WHERE file_id IN ("
            " SELECT file_id FROM media_files WHERE created_at < $1 ORDER BY created_at LIMIT $2)"
        )
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), before, limit)

    async def forget_media_file(self, file_id: str) -> bool:
        sql = "DELETE FROM media_files WHERE file_id = $1"
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), file_id) > 0
