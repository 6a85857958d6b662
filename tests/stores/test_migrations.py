"""Tests of versioned migrations and of opening stores by URL."""

from __future__ import annotations

import asyncio

import aiosqlite
import asyncpg
import pytest

from proxy.stores import MigrationError, Store, open_store, sqlite_path
from proxy.stores import migrations as mig
from tests.stores.helpers import raw_query

LATEST = mig.latest_version("sqlite")
VERSIONS = [m.version for m in mig.load("sqlite")]


async def _versions(url: str) -> list[int]:
    rows = await raw_query(url, "SELECT version FROM schema_version ORDER BY version")
    return [int(r[0]) for r in rows]


def test_backends_have_the_same_migration_versions() -> None:
    """SQLite and PostgreSQL migrations have the same versions and names, ascending from 1
    (a version handed to a change not landed yet may be missing)."""
    sqlite = [(m.version, m.name) for m in mig.load("sqlite")]
    postgres = [(m.version, m.name) for m in mig.load("postgres")]
    assert sqlite == postgres
    assert VERSIONS[0] == 1
    assert sorted(set(VERSIONS)) == VERSIONS
    assert VERSIONS[-1] == LATEST


def test_split_statements_keeps_statements_whole() -> None:
    """The SQLite script splitter keeps semicolons inside strings and drops comments."""
    script = "-- note\nCREATE TABLE a (x TEXT DEFAULT 'a;b');\n\nINSERT INTO a VALUES ('c');\n"
    assert mig.split_statements(script) == [
        "CREATE TABLE a (x TEXT DEFAULT 'a;b');",
        "INSERT INTO a VALUES ('c');",
    ]
    with pytest.raises(MigrationError):
        mig.split_statements("CREATE TABLE b (x")


def test_pending_refuses_unknown_or_edited_versions() -> None:
    """A database newer than the code, or with an edited migration, is refused."""
    known = mig.load("sqlite")
    assert mig.pending(known, {}) == known
    assert mig.pending(known, {m.version: m.checksum for m in known}) == ()
    with pytest.raises(MigrationError, match="newer"):
        mig.pending(known, {LATEST + 1: "x"})
    with pytest.raises(MigrationError, match="changed"):
        mig.pending(known, {1: "edited"})


async def test_reopen_reapplies_nothing(store: Store, store_url: str) -> None:
    """Opening an already migrated database again leaves one row per version."""
    again = await open_store(store_url)
    await again.close()
    assert await _versions(store_url) == VERSIONS


async def test_concurrent_opens_migrate_once(store_url: str) -> None:
    """Several replicas opening a fresh database at once all succeed and migrate it once."""
    stores = await asyncio.gather(*(open_store(store_url) for _ in range(5)))
    try:
        assert await _versions(store_url) == VERSIONS
    finally:
        for opened in stores:
            await opened.close()


async def test_edited_migration_is_refused_at_open(store: Store, store_url: str) -> None:
    """If an applied migration's recorded checksum differs, open raises MigrationError."""
    await raw_query(store_url, "UPDATE schema_version SET checksum = 'tampered' WHERE version = 1")
    with pytest.raises(MigrationError):
        await open_store(store_url)


def test_sqlite_url_paths() -> None:
    """sqlite:/// URLs map to relative, absolute and in-memory paths."""
    assert sqlite_path("sqlite:///data/proxy.db") == "data/proxy.db"
    assert sqlite_path("sqlite:////var/lib/proxy.db") == "/var/lib/proxy.db"
    assert sqlite_path("sqlite:///:memory:") == ":memory:"
    with pytest.raises(ValueError, match="sqlite"):
        sqlite_path("sqlite://")


async def test_unknown_url_scheme_is_refused() -> None:
    """open_store refuses a URL whose scheme names no backend."""
    with pytest.raises(ValueError, match="mysql"):
        await open_store("mysql://root@localhost/db")


async def test_in_memory_sqlite_store_works() -> None:
    """An in-memory SQLite store opens, migrates and keeps jobs for its lifetime."""
    opened = await open_store("sqlite:///:memory:")
    try:
        assert await opened.in_flight_by_model() == {}
    finally:
        await opened.close()


async def _apply_only(url: str, count: int) -> None:
    """Bring a fresh database to schema version ``count`` by hand, as older code would have."""
    insert = "INSERT INTO schema_version (version, name, checksum) VALUES ($1, $2, $3)"
    if url.startswith("sqlite:"):
        async with aiosqlite.connect(sqlite_path(url)) as conn:
            await conn.execute(mig.SCHEMA_VERSION_DDL)
            for m in mig.load("sqlite")[:count]:
                for statement in mig.split_statements(m.sql):
                    await conn.execute(statement)
                await conn.execute(insert.replace("$", "?"), (m.version, m.name, m.checksum))
            await conn.commit()
        return
    pg = await asyncpg.connect(url)
    try:
        await pg.execute(mig.SCHEMA_VERSION_DDL)
        for m in mig.load("postgres")[:count]:
            await pg.execute(m.sql)
            await pg.execute(insert, m.version, m.name, m.checksum)
    finally:
        await pg.close()


async def test_version_2_database_upgrades_keeping_rows(store_url: str) -> None:
    """A database at version 2 with a key and a job opens at the latest version with both intact."""
    await _apply_only(store_url, 2)
    await raw_query(
        store_url,
        "INSERT INTO virtual_keys (key_id, key_hash, created_at) VALUES ('vk_old', 'h', 1.0)",
    )
    await raw_query(
        store_url,
        "INSERT INTO jobs (task_id, caller, pinned_slug, status, submitted_at)"
        " VALUES ('old/1', 'c', 'm', 'pending', 1.0)",
    )
    opened = await open_store(store_url)
    try:
        assert await _versions(store_url) == VERSIONS
        key = await opened.get_virtual_key("vk_old")
        assert key is not None
        assert (key.expires_at, key.max_concurrent_jobs) == (None, None)
        job = await opened.get_job("old/1")
        assert job is not None
        assert job.reservation_id is None
        assert await opened.list_budgets() == []
    finally:
        await opened.close()
