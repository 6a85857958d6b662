"""Two proxy processes on one PostgreSQL: admin changes made through both at once keep one
valid audit chain, and admin tokens added or revoked on one replica work (or stop working) on
the other without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.postgres import fresh_postgres
from harness.processes import ProxyProcess, run_proxy, start_proxy
from harness.waits import SHORT_WAIT_S, wait_until
from proxy.simulator import Simulator, SimulatorConfig, build_app

ServerFactory = Callable[..., Awaitable[TestServer]]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CONFIG_TOKEN = "replica-config-admin-token"
PER_REPLICA = 40


async def _call(
    http: aiohttp.ClientSession, proc: ProxyProcess, method: str, path: str, token: str,
    body: Any = None, request_id: str | None = None,
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    url = f"http://127.0.0.1:{proc.admin_port}{path}"
    async with http.request(method, url, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_two_replicas_append_to_one_chain(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """80 budget changes sent through two replicas at once are 80 gapless, linked rows, and
    verify passes; a token added on one replica works on the other, and its revocation too."""
    sim = await aiohttp_server(build_app(Simulator(SimulatorConfig.fast(concurrency_limit=0))))
    async with fresh_postgres("test_audit") as store_url:
        env = proxy_env(
            str(sim.make_url("")).rstrip("/"), store_url,
            MODELLIX_PROXY_ADMIN__TOKEN=CONFIG_TOKEN,
        )  # fmt: skip
        procs: list[ProxyProcess] = []
        try:
            for i in range(2):
                procs.append(await start_proxy(env, tmp_path / f"replica-{i}.log"))
            a, b = procs
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                ops = {"name": "ops-2", "role": "operator"}
                status, added = await _call(http, a, "POST", "/admin/tokens", CONFIG_TOKEN, ops)
                assert status == 201
                ops2 = added["token"]
                assert (await _call(http, b, "GET", "/admin/jobs", ops2))[0] == 200

                async def changes(proc: ProxyProcess, who: str, token: str) -> list[int]:
                    statuses = []
                    for n in range(PER_REPLICA):
                        body = {
                            "scope": "team",
                            "subject": who,
                            "window": "day",
                            "limit_usd": n + 1,
                        }
                        status, _ = await _call(
                            http, proc, "PUT", f"/admin/budgets/{who}-{n % 10}", token, body,
                            request_id=f"{who}-{n}",
                        )  # fmt: skip
                        statuses.append(status)
                    return statuses

                results = await asyncio.gather(
                    changes(a, "a", CONFIG_TOKEN), changes(b, "b", ops2),
                    changes(a, "c", ops2), changes(b, "d", CONFIG_TOKEN),
                )  # fmt: skip
                assert {s for statuses in results for s in statuses} == {200}

                status, _ = await _call(
                    http, b, "DELETE", f"/admin/tokens/{added['token_id']}", CONFIG_TOKEN
                )
                assert status == 200

                async def refused_on_a() -> bool:
                    return (await _call(http, a, "GET", "/admin/jobs", ops2))[0] == 401

                await wait_until(refused_on_a, SHORT_WAIT_S, "the revocation seen by replica a")
                status, page = await _call(http, a, "GET", "/admin/audit?limit=1000", CONFIG_TOKEN)
            assert status == 200
            rows = page["rows"]
            total = 1 + 4 * PER_REPLICA + 1
            assert [r["seq"] for r in rows] == list(range(1, total + 1))
            assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
            puts = [r for r in rows if r["action"] == "budget.put"]
            assert sorted(r["request_id"] for r in puts) == sorted(
                f"{who}-{n}" for who in "abcd" for n in range(PER_REPLICA)
            )
            assert {r["actor"] for r in puts} == {"config", "ops-2"}
            # A budget's successive rows link up: one change's after is the next one's before.
            for who in "abcd":
                for slot in range(10):
                    mine = [r for r in puts if r["subject"] == f"{who}-{slot}"]
                    assert mine[0]["before"] is None
                    for earlier, later in itertools.pairwise(mine):
                        assert later["before"]["limit_usd"] == earlier["after"]["limit_usd"]
            verified = await run_proxy("audit", "verify", env=env)
            assert verified.code == 0, verified.out + verified.err
            assert f"intact: {total} rows checked" in verified.out
        finally:
            for proc in procs:
                with contextlib.suppress(Exception):
                    await proc.kill()
