"""Published request schemas: every version seen, and the pin per model (both SQL engines).

``record_schema`` is one transaction: the version row is added if new, then the pin row is
created (first sight: pinned), or its ``latest_hash`` moves (a change, counted), and under
``follow`` its ``pinned_hash`` moves too. ``accept_schema`` pins the latest (or a named)
version. Replicas that fetched the same document write the same rows.
"""

from __future__ import annotations

from proxy.stores._sql import Row, SqlBase
from proxy.stores.schema_records import SchemaPin, SchemaVersion

INSERT_VERSION = """
INSERT INTO schema_versions (slug, hash, document, first_seen) VALUES ($1, $2, $3, $4)
ON CONFLICT (slug, hash) DO NOTHING"""
INSERT_PIN = """
INSERT INTO schema_pins (slug, pinned_hash, latest_hash, pinned_at, latest_at, checked_at, changes)
VALUES ($1, $2, $2, $3, $3, $3, 0)
ON CONFLICT (slug) DO NOTHING"""
SEEN_AGAIN = "UPDATE schema_pins SET checked_at = $2 WHERE slug = $1"
CHANGED = """
UPDATE schema_pins SET latest_hash = $2, latest_at = $3, checked_at = $3, changes = changes + 1,
    pinned_hash = CASE WHEN $4 THEN $2 ELSE pinned_hash END,
    pinned_at = CASE WHEN $4 THEN $3 ELSE pinned_at END
WHERE slug = $1"""
GET_PIN = "SELECT * FROM schema_pins WHERE slug = $1"
VERSIONS = "SELECT slug, hash, first_seen FROM schema_versions WHERE slug = $1 ORDER BY first_seen"
ACCEPT = "UPDATE schema_pins SET pinned_hash = $2, pinned_at = $3 WHERE slug = $1"


def pin_from_row(row: Row) -> SchemaPin:
    return SchemaPin(
        slug=row["slug"],
        pinned_hash=row["pinned_hash"],
        latest_hash=row["latest_hash"],
        pinned_at=float(row["pinned_at"]),
        latest_at=float(row["latest_at"]),
        checked_at=float(row["checked_at"]),
        changes=int(row["changes"]),
    )


class SchemasMixin(SqlBase):
    """``SchemaStore`` over any ``SqlBase`` connection provider."""

    async def record_schema(
        self, slug: str, hash_: str, document: str, now: float, *, follow: bool
    ) -> SchemaPin:
        """Record one fetched version; the pin as it stands after it."""
        select = GET_PIN + self.dialect.lock_rows
        async with self._write() as tx:
            await tx.execute(self.dialect.sql(INSERT_VERSION), slug, hash_, document, now)
            await tx.execute(self.dialect.sql(INSERT_PIN), slug, hash_, now)
            row = await tx.fetchrow(self.dialect.sql(select), slug)
            assert row is not None  # inserted above or already there
            if row["latest_hash"] == hash_:
                await tx.execute(self.dialect.sql(SEEN_AGAIN), slug, now)
            else:
                await tx.execute(self.dialect.sql(CHANGED), slug, hash_, now, follow)
            row = await tx.fetchrow(self.dialect.sql(select), slug)
        assert row is not None
        return pin_from_row(row)

    async def accept_schema(self, slug: str, hash_: str | None, now: float) -> SchemaPin | None:
        """Pin ``hash_`` (default: the latest); ``None`` if no such pin or version."""
        select = GET_PIN + self.dialect.lock_rows
        version = "SELECT 1 AS found FROM schema_versions WHERE slug = $1 AND hash = $2"
        async with self._write() as tx:
            row = await tx.fetchrow(self.dialect.sql(select), slug)
            if row is None:
                return None
            target = hash_ or str(row["latest_hash"])
            if await tx.fetchrow(self.dialect.sql(version), slug, target) is None:
                return None
            if target != row["pinned_hash"]:
                await tx.execute(self.dialect.sql(ACCEPT), slug, target, now)
            row = await tx.fetchrow(self.dialect.sql(select), slug)
        return None if row is None else pin_from_row(row)

    async def schema_pins(self) -> list[SchemaPin]:
        async with self._read() as tx:
            rows = await tx.fetch("SELECT * FROM schema_pins ORDER BY slug")
        return [pin_from_row(r) for r in rows]

    async def schema_pin(self, slug: str) -> SchemaPin | None:
        sql = "SELECT * FROM schema_pins WHERE slug = $1"
        async with self._read() as tx:
            row = await tx.fetchrow(self.dialect.sql(sql), slug)
        return None if row is None else pin_from_row(row)

    async def schema_document(self, slug: str, hash_: str) -> str | None:
        sql = "SELECT document FROM schema_versions WHERE slug = $1 AND hash = $2"
        async with self._read() as tx:
            row = await tx.fetchrow(self.dialect.sql(sql), slug, hash_)
        return None if row is None else str(row["document"])

    async def schema_versions(self, slug: str) -> list[SchemaVersion]:
        sql = (
            "SELECT slug, hash, first_seen FROM schema_versions WHERE slug = $1 ORDER BY first_seen"
        )
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), slug)
        return [SchemaVersion(r["slug"], r["hash"], float(r["first_seen"])) for r in rows]
