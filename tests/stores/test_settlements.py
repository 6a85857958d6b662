"""Contract tests of the settlement journal (balance reconciliation's ledger side), both engines."""

from __future__ import annotations

import asyncio

import aiosqlite
import asyncpg

from harness.postgres import fresh_postgres
from harness.waits import wait_until
from proxy.stores import Store, open_store, sqlite_path
from proxy.stores import migrations as mig
from proxy.stores.webhook_records import BalanceReading, SettledSince
from tests.stores.helpers import T0, new_job, raw_many, raw_query


async def _settle(store: Store, task_id: str, status: str, micros: int | None, at: float) -> None:
    await store.observe(task_id, status, at, source="watcher", final_cost_micros=micros)


async def _journal(url: str) -> list[tuple[int, str, str | None, int]]:
    rows = await raw_query(url, "SELECT seq, task_id, team, micros FROM settlements ORDER BY seq")
    return [(int(r[0]), str(r[1]), r[2], int(r[3])) for r in rows]


async def test_every_settlement_of_spend_is_journalled_once_in_order(
    store: Store, store_url: str
) -> None:
    """Successes and billed failures get one journal row each, numbered 1, 2, 3; nothing else."""
    for task_id, team in (("a", "growth"), ("b", "brand"), ("c", "growth"), ("d", "growth")):
        await store.insert_job(new_job(task_id, team=team))
    await _settle(store, "a", "success", 324_000, T0 + 10)
    await _settle(store, "b", "failed", 0, T0 + 20)  # released: no spend
    await _settle(store, "c", "failed", 100_000, T0 + 30)  # a failure the upstream billed
    await _settle(store, "d", "success", 540_000, T0 + 40)
    await _settle(store, "a", "success", 324_000, T0 + 50)  # seen again: already terminal
    assert await _journal(store_url) == [
        (1, "a", "growth", 324_000),
        (2, "c", "growth", 100_000),
        (3, "d", "growth", 540_000),
    ]
    assert await store.expire_overdue(T0 + 10**6, 60) == []  # nothing open is left to expire


async def test_settled_since_sums_after_a_sequence_and_says_how_far(store: Store) -> None:
    """The sum runs over (after, through], through being the last settlement committed."""
    for i, team in enumerate(("growth", "brand", "growth")):
        await store.insert_job(new_job(f"j{i}", team=team))
        await _settle(store, f"j{i}", "success", 100_000 * (i + 1), T0 + i)
    everything = await store.settled_since(0)
    assert (everything.through, everything.micros) == (3, 600_000)
    later = await store.settled_since(1)
    assert (later.through, later.micros) == (3, 500_000)
    growth = await store.settled_since(0, ["growth"])
    assert (growth.through, growth.micros) == (3, 400_000)
    nothing = await store.settled_since(3)
    assert (nothing.through, nothing.micros) == (3, 0)


async def test_expired_jobs_settle_no_spend(store: Store, store_url: str) -> None:
    """An open job that expires releases its money: no journal row."""
    await store.insert_job(new_job("old"))
    expired = await store.expire_overdue(T0 + 10**6, 60)
    assert [job.task_id for job in expired] == ["old"]
    assert await _journal(store_url) == []
    assert (await store.settled_since(0)).through == 0


async def test_purge_keeps_what_a_reading_has_not_counted(store: Store, store_url: str) -> None:
    """Old rows are purged only up to the lowest sequence every reading has counted."""
    for i in range(4):
        await store.insert_job(new_job(f"p{i}"))
        await _settle(store, f"p{i}", "success", 1_000, T0 + i)
    for team, through in (("upstream", 3), ("other", 2)):
        reading = BalanceReading(
            team=team, balance_micros=0, read_at=T0, first_read_at=T0, settled_through=through
        )
        await store.put_balance_reading(reading)
    assert await store.purge_settlements(T0 + 100, 10) == 2
    assert [row[0] for row in await _journal(store_url)] == [3, 4]
    assert await store.purge_settlements(T0 + 2.5, 10) == 0  # row 3 is not old enough
    assert await store.settled_since(0) == SettledSince(4, 2_000)


async def test_purge_without_readings_keeps_only_the_recent(store: Store, store_url: str) -> None:
    """With no balance reconciliation, rows are purged by age alone, in batches."""
    for i in range(3):
        await store.insert_job(new_job(f"q{i}"))
        await _settle(store, f"q{i}", "success", 1_000, T0 + i)
    assert await store.purge_settlements(T0 + 1.5, 1) == 1
    assert await store.purge_settlements(T0 + 1.5, 1) == 1
    assert await store.purge_settlements(T0 + 1.5, 1) == 0
    assert [row[0] for row in await _journal(store_url)] == [3]


async def test_a_reader_never_sees_a_settlement_before_an_earlier_one_commits() -> None:
    """PostgreSQL: while one settlement's transaction is open the next waits, and readers stop
    before both (SQLite serialises every writer, so order is commit order there by itself)."""
    async with fresh_postgres("test_settlements") as url:
        store = await open_store(url)
        try:
            await _late_commit(store, url)
        finally:
            await store.close()
        assert [(row[0], row[1]) for row in await _journal(url)] == [(1, "late"), (2, "next")]


async def _late_commit(store: Store, url: str) -> None:
    await store.insert_job(new_job("late"))
    await store.insert_job(new_job("next"))
    slow = await asyncpg.connect(url)
    try:
        transaction = slow.transaction()
        await transaction.start()
        seq = await slow.fetchval(
            "UPDATE counters SET value = value + 1 WHERE name = 'settlement' RETURNING value"
        )
        await slow.execute(
            "INSERT INTO settlements (seq, task_id, team, micros, settled_at)"
            " VALUES ($1, 'late', 'growth', 7, $2)",
            seq,
            T0,
        )
        settling = asyncio.get_running_loop().create_task(
            _settle(store, "next", "success", 5, T0 + 1)
        )
        await wait_until(lambda: _waiting_on_a_lock(url))  # it queues on the counter's row
        assert not settling.done()
        assert await store.settled_since(0) == SettledSince(0, 0)  # neither is visible yet
        await transaction.commit()
        await asyncio.wait_for(settling, 30)
    finally:
        await slow.close()
    assert await store.settled_since(0) == SettledSince(2, 12)


async def _waiting_on_a_lock(url: str) -> bool:
    rows = await raw_query(
        url,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    return int(rows[0][0]) > 0


async def test_an_upgrade_journals_what_settled_since_the_newest_reading(store_url: str) -> None:
    """Migrating a ledger that predates the journal counts jobs settled after the last reading."""
    known = mig.load("postgres" if store_url.startswith("postgresql") else "sqlite")
    journal = next(m for m in known if m.name == "settlement_order")
    before = [m for m in known if m.version < journal.version]
    await _apply_raw(store_url, before)
    jobs = [
        ("counted", T0 + 10, 100, "success"),  # settled before the reading: already counted
        ("after-1", T0 + 30, 200, "success"),
        ("after-2", T0 + 20 + 5, 300, "failed"),
        ("open", None, None, "processing"),
    ]
    await raw_many(
        store_url,
        "INSERT INTO jobs (task_id, caller, pinned_slug, status, submitted_at, terminal_at,"
        " final_cost_micros, team) VALUES ($1, 'fp:1', 'm/x', $4, $2, $2, $3, 'growth')",
        [(t, at if at is not None else T0, micros, status) for t, at, micros, status in jobs],
    )
    await raw_many(
        store_url,
        "INSERT INTO balance_readings (team, balance_micros, read_at, first_read_at)"
        " VALUES ('upstream', 0, $1, $2)",
        [(T0 + 20, T0 + 20)],
    )
    store = await open_store(store_url)
    try:
        assert await _journal(store_url) == [
            (1, "after-2", "growth", 300),
            (2, "after-1", "growth", 200),
        ]
        assert (await store.settled_since(0)).through == 2
        reading = await store.get_balance_reading("upstream")
        assert reading is not None
        assert reading.settled_through == 0
        await store.insert_job(new_job("new"))
        await _settle(store, "new", "success", 1, T0 + 40)
        assert (await store.settled_since(2)).micros == 1
    finally:
        await store.close()


async def _apply_raw(url: str, migrations: list[mig.Migration]) -> None:
    """Apply ``migrations`` the way an older release did, recording each as applied."""
    record = "INSERT INTO schema_version (version, name, checksum) VALUES ($1, $2, $3)"
    if url.startswith("postgresql"):
        pg = await asyncpg.connect(url)
        try:
            await pg.execute(mig.SCHEMA_VERSION_DDL)
            for migration in migrations:
                await pg.execute(migration.sql)
                await pg.execute(record, migration.version, migration.name, migration.checksum)
        finally:
            await pg.close()
        return
    async with aiosqlite.connect(sqlite_path(url)) as conn:
        await conn.execute(mig.SCHEMA_VERSION_DDL)
        for migration in migrations:
            for statement in mig.split_statements(migration.sql):
                await conn.execute(statement)
            await conn.execute(
                record.replace("$", "?"), (migration.version, migration.name, migration.checksum)
            )
        await conn.commit()
