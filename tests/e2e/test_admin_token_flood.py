"""Made-up admin tokens cannot load the store, on each engine: hundreds of well-formed
unknown tokens (new ids, or a real id with a wrong secret), from concurrent connections, cost
the admin listener at most a couple of reads of the stored tokens within
``admin.unknown_token_seconds``; a token added through one replica's API works there at once,
and on another replica within that time."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from harness.config import settings_for
from harness.waits import wait_until
from proxy.admin import create_admin_app
from proxy.telemetry.metrics import Metrics
from tests.e2e.conftest import Stack

ServerFactory = Callable[..., Awaitable[TestServer]]
CONFIG_TOKEN = "flood-config-operator-token"
FLOOD, AT_ONCE = 300, 30


async def _admin(
    make_stack: Callable[..., Awaitable[Stack]],
    aiohttp_server: ServerFactory,
    store_url: str,
    unknown_token_seconds: float,
) -> str:
    """An admin listener on the engine's database; its base URL."""
    stack = await make_stack(store={"url": store_url})
    admin = {"enabled": True, "token": CONFIG_TOKEN, "unknown_token_seconds": unknown_token_seconds}
    settings = settings_for(stack.sim_url, admin=admin)
    server = await aiohttp_server(create_admin_app(settings, Metrics(), stack.runtime))
    return str(server.make_url("")).rstrip("/")


async def _status(http: aiohttp.ClientSession, base: str, token: str) -> int:
    async with http.get(f"{base}/admin/jobs", headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status


async def _reads(http: aiohttp.ClientSession, base: str) -> float:
    """The listener's reads of the stored admin tokens so far, every cause."""
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    (family,) = [
        f
        for f in text_string_to_metric_families(text)
        if f.name == "modellix_proxy_admin_token_reads"
    ]
    return sum(sample.value for sample in family.samples if sample.name.endswith("_total"))


async def _flood(http: aiohttp.ClientSession, base: str, tokens: list[str]) -> set[int]:
    """Every token presented, ``AT_ONCE`` connections at a time; the statuses answered."""
    statuses: set[int] = set()
    for start in range(0, len(tokens), AT_ONCE):
        batch = tokens[start : start + AT_ONCE]
        statuses |= set(await asyncio.gather(*(_status(http, base, t) for t in batch)))
    return statuses


async def _refused_with_the_table_locked(
    http: aiohttp.ClientSession, base: str, store_url: str
) -> set[int]:
    """A flood's statuses while another session holds ``admin_tokens`` locked against reads:
    answered at once only if no request reads the table (else each waits on the lock)."""
    holder = await asyncpg.connect(store_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE admin_tokens IN ACCESS EXCLUSIVE MODE")
            async with asyncio.timeout(10):
                return await _flood(http, base, [_made_up() for _ in range(AT_ONCE)])
    finally:
        await holder.close()


def _made_up(token_id: str | None = None) -> str:
    return f"mlx-adm-{token_id or secrets.token_hex(6)}-{secrets.token_urlsafe(32)}"


async def test_unknown_admin_tokens_cost_a_bounded_number_of_reads(
    make_stack: Callable[..., Awaitable[Stack]], aiohttp_server: ServerFactory, store_url: str
) -> None:
    """300 made-up tokens (each a new id) and 300 with a real id and a wrong secret are each
    401, for at most two reads of the stored tokens per flood (on PostgreSQL, answered
    while the table is locked against any read); a token added through this
    listener works on its next request, and through another listener within its window."""
    base = await _admin(make_stack, aiohttp_server, store_url, unknown_token_seconds=60)
    other = await _admin(make_stack, aiohttp_server, store_url, unknown_token_seconds=0.2)
    async with aiohttp.ClientSession() as http:
        assert await _status(http, base, CONFIG_TOKEN) == 200
        before = await _reads(http, base)
        assert await _flood(http, base, [_made_up() for _ in range(FLOOD)]) == {401}
        after_new_ids = await _reads(http, base)
        assert after_new_ids - before <= 2, (before, after_new_ids)
        if store_url.startswith("postgres"):  # the same, seen from the database itself
            assert await _refused_with_the_table_locked(http, base, store_url) == {401}

        body: dict[str, Any] = {"name": "flood-ops", "role": "operator"}
        auth = {"Authorization": f"Bearer {CONFIG_TOKEN}"}
        async with http.post(f"{base}/admin/tokens", json=body, headers=auth) as resp:
            assert resp.status == 201, await resp.text()
            added = await resp.json()
        assert await _status(http, base, added["token"]) == 200  # at once, despite the window
        settled = await _reads(http, base)
        wrong = [_made_up(added["token_id"]) for _ in range(FLOOD)]
        assert await _flood(http, base, wrong) == {401}
        assert await _reads(http, base) - settled <= 2

        async def works_there() -> bool:
            return await _status(http, other, added["token"]) == 200

        await wait_until(works_there, within=10, what="the new token on the other listener")
