"""kill -9 of a proxy between an admin change and its audit row (PostgreSQL): the change is
made in the transaction, the row's append waits on the chain's head held by another
session, the proxy dies there; neither the change nor a row is left, and the chain verifies."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.postgres import fresh_postgres
from harness.processes import start_proxy
from harness.waits import SHORT_WAIT_S, wait_until
from proxy.simulator import Simulator, SimulatorConfig, build_app

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]
TOKEN = "kill-config-admin-token"
WAITING = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%audit_chain%'
"""
WRITING = """
SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE c.relname = 'budgets' AND l.mode = 'RowExclusiveLock' AND l.granted
"""


async def test_kill_between_change_and_row_leaves_neither(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """The budget put is blocked on the head lock after its upsert ran; kill -9; the budget
    does not exist, the trail is empty, and ``audit verify`` passes."""
    sim = await aiohttp_server(build_app(Simulator(SimulatorConfig.fast(concurrency_limit=0))))
    async with fresh_postgres("test_audit_kill") as store_url:
        env = proxy_env(
            str(sim.make_url("")).rstrip("/"), store_url, MODELLIX_PROXY_ADMIN__TOKEN=TOKEN
        )
        proc = await start_proxy(env, tmp_path / "proxy.log")
        holder = await asyncpg.connect(store_url)
        watcher = await asyncpg.connect(store_url)  # pg_stat_activity is fixed per transaction
        try:
            holder_tx = holder.transaction()
            await holder_tx.start()
            await holder.execute("SELECT head_seq FROM audit_chain WHERE id = 1 FOR UPDATE")
            async with aiohttp.ClientSession() as http:
                put = asyncio.ensure_future(
                    http.put(
                        f"http://127.0.0.1:{proc.admin_port}/admin/budgets/doomed",
                        json={"scope": "team", "subject": "t", "window": "day", "limit_usd": 5},
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
                )

                async def blocked() -> bool:
                    return bool(await watcher.fetchval(WAITING))

                await wait_until(blocked, within=SHORT_WAIT_S, what="the append waiting")
                assert await watcher.fetchval(WRITING) == 1  # the upsert ran in that transaction
                await proc.kill_group()
                with contextlib.suppress(aiohttp.ClientError):
                    (await put).close()
            await holder_tx.rollback()
            assert await holder.fetchval("SELECT count(*) FROM budgets") == 0
            assert await holder.fetchval("SELECT count(*) FROM audit_log") == 0
        finally:
            await holder.close()
            await watcher.close()
            await proc.stop()
        verify = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "audit", "verify", env=env,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await verify.communicate()
        assert verify.returncode == 0, out
        assert b"intact" in out
