"""Group commit on SQLite: writers share a COMMIT, each returns only once it is on disk.

"On disk" is checked from a second, independent connection to the same file: in WAL
mode it sees exactly what was committed, nothing of an open transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.stores.base import StoreUnavailableError
from proxy.stores.sqlite import SqliteStore

WRITERS = 50


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(str(tmp_path / "gc.db"))
    async with opened._write() as tx:
        await tx.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, writer TEXT)")
        await tx.execute(
            "CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER "
            "REFERENCES probe(id) DEFERRABLE INITIALLY DEFERRED)"
        )
    yield opened
    await opened.close()


def _one(cursor: sqlite3.Cursor) -> int:
    row = cursor.fetchone()
    return int(row[0])


def seen(path: Path, writer: str) -> int:
    """Rows of ``writer`` another connection sees (committed ones only)."""
    conn = sqlite3.connect(path)
    try:
        return _one(conn.execute("SELECT COUNT(*) FROM probe WHERE writer = ?", (writer,)))
    finally:
        conn.close()


async def insert(store: SqliteStore, writer: str, rows: int = 2) -> None:
    async with store._write() as tx:
        for _ in range(rows):
            await tx.execute("INSERT INTO probe (writer) VALUES ($1)", writer)


async def test_concurrent_writers_share_commits_and_each_is_durable_on_return(
    store: SqliteStore, tmp_path: Path
) -> None:
    path = tmp_path / "gc.db"
    before = store.group_commit.commits
    visible_on_return: dict[str, int] = {}

    async def one(i: int) -> None:
        await insert(store, f"w{i}")
        # Read at once from another connection, on a thread: committed or not there.
        visible_on_return[f"w{i}"] = await asyncio.to_thread(seen, path, f"w{i}")

    await asyncio.gather(*(one(i) for i in range(WRITERS)))
    assert visible_on_return == {f"w{i}": 2 for i in range(WRITERS)}
    commits = store.group_commit.commits - before
    assert 1 <= commits < WRITERS / 5, commits  # batched, not one COMMIT per writer
    print(f"{WRITERS} writers, {commits} COMMITs")


async def test_one_commit_per_writer_when_max_writes_is_one(tmp_path: Path) -> None:
    store = await SqliteStore.open(str(tmp_path / "one.db"), group_commit_max_writes=1)
    try:
        async with store._write() as tx:
            await tx.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, writer TEXT)")
        before = store.group_commit.commits
        await asyncio.gather(*(insert(store, f"w{i}") for i in range(10)))
        assert store.group_commit.commits - before == 10
    finally:
        await store.close()


async def test_a_failing_writer_rolls_back_only_its_own_rows(
    store: SqliteStore, tmp_path: Path
) -> None:
    class Refused(Exception):
        pass

    async def failing() -> None:
        async with store._write() as tx:
            await tx.execute("INSERT INTO probe (writer) VALUES ($1)", "bad")
            raise Refused

    results = await asyncio.gather(
        *(insert(store, f"w{i}") for i in range(5)),
        failing(),
        *(insert(store, f"v{i}") for i in range(5)),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [type(None)] * 5 + [Refused] + [type(None)] * 5
    path = tmp_path / "gc.db"
    assert seen(path, "bad") == 0
    assert all(seen(path, f"{p}{i}") == 2 for p in "wv" for i in range(5))


async def test_a_cancelled_writer_leaves_nothing_and_others_commit(
    store: SqliteStore, tmp_path: Path
) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> None:
        async with store._write() as tx:
            await tx.execute("INSERT INTO probe (writer) VALUES ($1)", "cancelled")
            inside.set()
            await release.wait()

    victim = asyncio.ensure_future(slow())
    await inside.wait()
    others = [asyncio.ensure_future(insert(store, f"w{i}")) for i in range(5)]
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim
    await asyncio.gather(*others)
    path = tmp_path / "gc.db"
    assert seen(path, "cancelled") == 0
    assert all(seen(path, f"w{i}") == 2 for i in range(5))


async def test_a_failed_commit_fails_every_writer_of_its_batch_and_the_next_batch_works(
    store: SqliteStore, tmp_path: Path
) -> None:
    """A deferred foreign key makes the shared COMMIT itself fail (a real engine error):
    nobody in that batch is told it is durable, and nothing of theirs is on disk."""
    gate = asyncio.Event()
    holding = asyncio.Event()

    async def first() -> None:  # holds the lock so the others queue into one batch
        async with store._write() as tx:
            await tx.execute("INSERT INTO probe (writer) VALUES ($1)", "first")
            holding.set()
            await gate.wait()

    async def orphan() -> None:  # violates the deferred key: COMMIT will refuse
        async with store._write() as tx:
            await tx.execute("INSERT INTO child (parent) VALUES (999999)")

    head = asyncio.ensure_future(first())
    await holding.wait()
    batch = [asyncio.ensure_future(insert(store, f"w{i}")) for i in range(4)]
    bad = asyncio.ensure_future(orphan())
    await asyncio.sleep(0)  # let them queue for the lock (ordering only, not a wait)
    gate.set()
    results = await asyncio.gather(head, *batch, bad, return_exceptions=True)
    assert all(isinstance(r, StoreUnavailableError) for r in results), results
    path = tmp_path / "gc.db"
    assert seen(path, "first") == 0
    assert all(seen(path, f"w{i}") == 0 for i in range(4))

    await insert(store, "after")
    assert seen(path, "after") == 2


async def test_a_reader_that_saw_a_batch_returns_only_once_it_is_committed(
    store: SqliteStore, tmp_path: Path
) -> None:
    path = tmp_path / "gc.db"
    observed: list[tuple[int, int]] = []

    async def reader() -> None:
        async with store._read() as tx:
            row = await tx.fetchrow("SELECT COUNT(*) AS n FROM probe")
        assert row is not None
        # What the reader saw is on disk by the time it returns.
        observed.append((int(row["n"]), await asyncio.to_thread(_count_all, path)))

    await asyncio.gather(
        *(insert(store, f"w{i}") for i in range(10)),
        *(reader() for _ in range(10)),
        *(insert(store, f"v{i}") for i in range(10)),
    )
    assert len(observed) == 10
    assert all(saw <= on_disk for saw, on_disk in observed), observed


def _count_all(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return _one(conn.execute("SELECT COUNT(*) FROM probe"))
    finally:
        conn.close()


async def test_close_commits_what_is_open(tmp_path: Path) -> None:
    store = await SqliteStore.open(str(tmp_path / "close.db"))
    async with store._write() as tx:
        await tx.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, writer TEXT)")
    await asyncio.gather(*(insert(store, f"w{i}") for i in range(20)))
    await store.close()
    assert _count_all(tmp_path / "close.db") == 40


async def test_a_long_read_does_not_hold_up_writers(store: SqliteStore, tmp_path: Path) -> None:
    """Reports and gauges read on the reader connection: a write lands while one runs."""
    reading = asyncio.Event()
    finish = asyncio.Event()
    seen_in_read: list[int] = []

    async def long_read() -> None:
        async with store._read() as tx:
            row = await tx.fetchrow("SELECT COUNT(*) AS n FROM probe")
            assert row is not None
            seen_in_read.append(int(row["n"]))
            reading.set()
            await finish.wait()  # a scan still running

    reader = asyncio.ensure_future(long_read())
    await reading.wait()
    try:
        async with asyncio.timeout(10):  # never reached: it would mean writers wait on reads
            await insert(store, "during")
        assert seen(tmp_path / "gc.db", "during") == 2
    finally:
        finish.set()
        await reader
    assert seen_in_read == [0]
    # A read after the write sees it (committed before the writer returned).
    async with store._read() as tx:
        row = await tx.fetchrow("SELECT COUNT(*) AS n FROM probe WHERE writer = $1", "during")
    assert row is not None
    assert row["n"] == 2
