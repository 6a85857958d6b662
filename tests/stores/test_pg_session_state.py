"""The PostgreSQL store leaves no session state on a pooled connection.

The pool skips asyncpg's reset query (``SELECT pg_advisory_unlock_all(); CLOSE ALL;
UNLISTEN *; RESET ALL;``, a round trip per acquisition; ``proxy.stores.postgres``). That is
right only while no store operation leaves a session-level advisory lock, an open cursor, a
LISTEN or a session setting behind: this runs the submit path's operations, recovery,
the watcher's and the reports' on a real database and then looks at every connection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest

from harness.postgres import fresh_postgres
from proxy.governance import focus
from proxy.stores import open_store
from proxy.stores.base import Reschedule
from proxy.stores.postgres import PostgresStore
from proxy.stores.records import StoredResponse
from tests.stores.helpers import T0
from tests.stores.test_intents import _intent

pytestmark = pytest.mark.postgres

# What the default reset would clear, as one row of counts. A setting counts when it differs
# from what RESET gives: asyncpg's type introspection sets ``jit`` off and back again.
SESSION_STATE = """
SELECT
  (SELECT count(*) FROM pg_locks
    WHERE pid = pg_backend_pid() AND locktype = 'advisory') AS advisory_locks,
  (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors,
  (SELECT count(*) FROM pg_listening_channels()) AS listening,
  (SELECT count(*) FROM pg_settings
    WHERE source = 'session' AND setting IS DISTINCT FROM reset_val) AS session_settings"""


async def _state(
    connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
) -> dict[str, int]:
    row = await connection.fetchrow(SESSION_STATE)
    assert row is not None
    return dict(row)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_postgres("test_session") as url:
        yield url


async def test_store_operations_leave_no_session_state(pg_url: str) -> None:
    store = await open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        for n in range(3):
            intent = await _intent(store, f"i{n}", "replica-a", key=f"k{n}")
            job = dataclasses.replace(intent.job, task_id=f"task-{n}", next_poll_at=T0)
            answer = StoredResponse(status=200, body=b'{"code":0}', task_id=f"task-{n}")
            await store.intent_to_job(intent, job, answer)
        await store.heartbeat("replica-a", T0)
        await store.recover("replica-b", T0 + 1000, 30.0)
        leased = await store.lease_due_at("replica-a", T0 + 1, 10, 30.0)
        assert leased
        await store.reschedule_many(
            "replica-a",
            [Reschedule(j.job.task_id, T0 + 60, 1, False) for j in leased],
        )
        await store.watcher_stats(T0 + 2)
        await store.unknown_jobs()
        await store.list_jobs()
        await store.report_groups(0, T0 + 10_000, ["day", "team", "model"])  # SET LOCAL work_mem
        await anext(store.ledger_csv(0, T0 + 10_000, focus.SQL_FIELDS), b"")  # one COPY, whole
        pool = store._pool
        connections = [await pool.acquire() for _ in range(pool.get_size())]
        try:
            states = [await _state(c) for c in connections]
            # The probe itself sees session state when there is some.
            await connections[0].execute("SET work_mem = '8MB'")
            assert (await _state(connections[0]))["session_settings"] >= 1
            await connections[0].execute("RESET work_mem")
        finally:
            for c in connections:
                await pool.release(c)
    finally:
        await store.close()
    clean = {"advisory_locks": 0, "cursors": 0, "listening": 0, "session_settings": 0}
    assert states
    assert all(s == clean for s in states), states
