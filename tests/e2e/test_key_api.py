"""The upstream's key API spoken for proxy keys: ``apikey/validate`` and ``team/balance``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.e2e.recording import UPSTREAM_KEY, Guarded, ServerFactory, guarded, key_budget
from tests.e2e.test_client_flow import HAILUO

VALIDATE = "/api/v1/apikey/validate"
BALANCE = "/api/v1/team/balance"
SUBMIT = "/api/v1/minimax/hailuo-02-t2v"  # $0.324 at 6 s 768P
VALID = {"code": 0, "message": "success", "data": {"is_valid": True}}
INVALID = {"code": 0, "message": "success", "data": {"is_valid": False}}


async def get(
    g: Guarded, path: str, authorization: str | None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{g.proxy_url}{path}", headers=headers) as resp,
    ):
        doc: dict[str, Any] = await resp.json(content_type=None)
        return resp.status, doc, dict(resp.headers)


async def direct(g: Guarded, path: str, authorization: str) -> dict[str, Any]:
    """What the upstream itself answers (straight to the simulator)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{g.sim_url}{path}", headers={"Authorization": authorization}) as resp,
    ):
        doc: dict[str, Any] = await resp.json()
        return doc


async def invalid_keys(g: Guarded) -> dict[str, str]:
    """A revoked, an expired, an unknown and a malformed proxy key."""
    revoked_id, revoked = await g.key()
    await g.store.revoke_virtual_key(revoked_id, time.time())
    _, expired = await g.key(expires_at=time.time() - 1)
    _, active = await g.key()
    return {
        "revoked": revoked,
        "expired": expired,
        "unknown": active[:-6] + "AAAAAA",
        "malformed": "mlx-vk-short",
    }


@pytest.mark.parametrize("mode", ["virtual", "mixed"])
async def test_validate_answers_for_proxy_keys_without_the_upstream(
    aiohttp_server: ServerFactory, mode: str
) -> None:
    """An active proxy key is valid; revoked, expired, unknown and malformed ones are 200
    ``is_valid: false`` (never 401), and the upstream hears of none of them."""
    g = await guarded(aiohttp_server, mode)
    _, active = await g.key()
    status, doc, _ = await get(g, VALIDATE, f"Bearer {active}")
    assert (status, doc) == (200, VALID)
    for name, token in (await invalid_keys(g)).items():
        status, doc, _ = await get(g, VALIDATE, f"Bearer {token}")
        assert (status, doc) == (200, INVALID), name
    assert g.relay.received == []
    assert await direct(g, VALIDATE, "Bearer sk-not-a-real-key") == INVALID  # the same shape


async def test_validate_in_virtual_mode_knows_only_proxy_keys(
    aiohttp_server: ServerFactory,
) -> None:
    """In virtual mode a raw upstream key or no key at all is ``is_valid: false``, as the proxy
    would refuse it on every other route; nothing is forwarded."""
    g = await guarded(aiohttp_server, "virtual")
    for authorization in (f"Bearer {UPSTREAM_KEY}", None, "Basic eDp5", "Bearer"):
        status, doc, _ = await get(g, VALIDATE, authorization)
        assert (status, doc) == (200, INVALID), authorization
    assert g.relay.received == []


async def test_balance_of_a_budgeted_key_is_what_its_budget_has_left(
    aiohttp_server: ServerFactory,
) -> None:
    """Under a hard budget the balance is the least money left in any budget on the key."""
    g = await guarded(aiohttp_server, "virtual")
    key_id, token = await g.key(team="studio-a")
    await key_budget(g, key_id, "5.00")
    auth = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{g.proxy_url}{SUBMIT}", json=HAILUO, headers=auth) as resp,
    ):
        assert resp.status == 200
    posted = len(g.relay.received)
    status, doc, headers = await get(g, BALANCE, f"Bearer {token}")
    # $5 less the running job's reservation: the top of the list's $0.054-$0.12/s range, 6 s
    assert (status, doc) == (200, {"code": 0, "message": "success", "data": {"balance": 4.28}})
    assert headers["X-Modellix-Proxy-Balance-Source"] == "budget"
    assert headers["X-Modellix-Proxy-Budget"] == f"key-{key_id}"
    assert len(g.relay.received) == posted  # answered by the proxy


async def test_balance_without_a_budget_is_the_upstream_balance(
    aiohttp_server: ServerFactory,
) -> None:
    """With no hard budget on the key, the team's upstream balance is fetched with the
    upstream key and returned as the upstream gave it."""
    g = await guarded(aiohttp_server, "virtual")
    _, token = await g.key()
    status, doc, headers = await get(g, BALANCE, f"Bearer {token}")
    assert status == 200
    assert doc == await direct(g, BALANCE, f"Bearer {UPSTREAM_KEY}")
    assert "X-Modellix-Proxy-Balance-Source" not in headers
    [seen] = g.relay.received
    assert (seen.method, seen.path_qs) == ("GET", BALANCE)
    assert seen.header("Authorization") == [f"Bearer {UPSTREAM_KEY}"]


@pytest.mark.parametrize("mode", ["virtual", "mixed"])
async def test_balance_refuses_invalid_proxy_keys_like_the_upstream(
    aiohttp_server: ServerFactory, mode: str
) -> None:
    """An invalid proxy key asking for the balance gets the upstream's 401, and the upstream
    receives nothing."""
    g = await guarded(aiohttp_server, mode)
    upstream_answer = await direct(g, BALANCE, "Bearer sk-not-a-real-key")
    for name, token in (await invalid_keys(g)).items():
        status, doc, _ = await get(g, BALANCE, f"Bearer {token}")
        assert status == 401, name
        assert doc["code"] == upstream_answer["code"] == 401
        assert doc["message"].startswith("Authentication failed: ")
        assert upstream_answer["message"].startswith("Authentication failed: ")
    assert g.relay.received == []


@pytest.mark.parametrize("mode", ["passthrough", "mixed"])
async def test_the_callers_own_key_is_forwarded_unchanged(
    aiohttp_server: ServerFactory, mode: str
) -> None:
    """The caller's own Modellix key reaches the upstream for both routes, answers untouched."""
    g = await guarded(aiohttp_server, mode)
    for path in (VALIDATE, BALANCE):
        for authorization in (f"Bearer {UPSTREAM_KEY}", "Bearer sk-not-a-real-key"):
            status, doc, _ = await get(g, path, authorization)
            assert doc == await direct(g, path, authorization), (path, authorization)
            assert status == (401 if doc["code"] == 401 else 200)
    assert [r.path_qs for r in g.relay.received] == [VALIDATE, VALIDATE, BALANCE, BALANCE]
    assert [r.header("Authorization") for r in g.relay.received] == [
        [f"Bearer {UPSTREAM_KEY}"],
        ["Bearer sk-not-a-real-key"],
    ] * 2


async def raw_get(g: Guarded, path: str, authorization: bytes) -> tuple[int, dict[str, Any]]:
    """A GET written byte for byte (so the header may hold bytes that are not UTF-8)."""
    host, port = g.proxy_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"GET "
            + path.encode()
            + b" HTTP/1.1\r\nHost: proxy\r\nAuthorization: "
            + authorization
            + b"\r\nConnection: close\r\n\r\n"
        )
        async with asyncio.timeout(10):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.startswith(b"{") else {}


@pytest.mark.parametrize("mode", ["virtual", "mixed"])
async def test_odd_authorization_bytes_are_answered_not_crashed(
    aiohttp_server: ServerFactory, mode: str
) -> None:
    """An Authorization that is not UTF-8 is an invalid key to validate and
    a 401 elsewhere; never a 500, never forwarded."""
    g = await guarded(aiohttp_server, mode)
    for authorization in (b"Bearer \xff\xfe", b"Bearer mlx-vk-\xc3\x28", b"Bearer \x80"):
        status, doc = await raw_get(g, VALIDATE, authorization)
        assert (status, doc) == (200, INVALID), authorization
        for path in (BALANCE, "/api/v1/models", "/api/v1/tasks/task-1"):
            status, doc = await raw_get(g, path, authorization)
            assert status == 401, (authorization, path, doc)
            assert doc["message"].startswith("Authentication failed: ")
    assert g.relay.received == []
