"""Hostile admin calls on each engine, over loopback: a rotated or revoked admin token stops
working on the replica that changed it at once (whatever the cache time), and a NUL or a
lone surrogate in a path, a query or a JSON body is a 400 that records nothing, never a 500
from the database driver."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from harness.config import settings_for
from proxy.admin import create_admin_app
from proxy.telemetry.metrics import Metrics
from tests.e2e.conftest import Stack

ServerFactory = Callable[..., Awaitable[TestServer]]
CONFIG_TOKEN = "hostile-config-operator-token"
BUDGET = {"scope": "team", "subject": "s", "window": "day", "limit_usd": 1}


@dataclass
class Admin:
    base: str
    http: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, token: str = CONFIG_TOKEN, body: bytes = b""
    ) -> tuple[int, dict[str, object]]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        url = URL(self.base + path, encoded=True)
        async with self.http.request(method, url, data=body or None, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def audit_rows(self) -> int:
        status, page = await self.call("GET", "/admin/audit?limit=1000")
        assert status == 200, page
        rows = page["rows"]
        assert isinstance(rows, list)
        return len(rows)


@pytest.fixture
async def admin(
    make_stack: Callable[..., Awaitable[Stack]], aiohttp_server: ServerFactory, store_url: str
) -> AsyncIterator[Admin]:
    stack = await make_stack(store={"url": store_url})
    settings = settings_for(
        stack.sim_url,
        admin={"enabled": True, "token": CONFIG_TOKEN, "token_cache_seconds": 60},
    )
    server = await aiohttp_server(create_admin_app(settings, Metrics(), stack.runtime))
    async with aiohttp.ClientSession() as http:
        yield Admin(str(server.make_url("")).rstrip("/"), http)


async def _add(admin: Admin, name: str) -> tuple[str, str]:
    body = json.dumps({"name": name, "role": "operator"}).encode()
    status, added = await admin.call("POST", "/admin/tokens", body=body)
    assert status == 201, added
    return str(added["token"]), str(added["token_id"])


async def test_rotation_and_revocation_take_effect_at_once_on_the_same_replica(
    admin: Admin,
) -> None:
    """With a one-minute token cache, the old secret is refused right after its rotation,
    and the new one right after its revocation, by the replica that made each change."""
    old, token_id = await _add(admin, "ops-rotating")
    assert (await admin.call("GET", "/admin/jobs", old))[0] == 200  # now cached as valid
    status, rotated = await admin.call("POST", f"/admin/tokens/{token_id}/rotate")
    assert status == 200, rotated
    new = str(rotated["token"])
    assert (await admin.call("GET", "/admin/jobs", old))[0] == 401
    assert (await admin.call("GET", "/admin/jobs", new))[0] == 200  # cached as valid
    assert (await admin.call("DELETE", f"/admin/tokens/{token_id}"))[0] == 200
    status, refused = await admin.call("GET", "/admin/jobs", new)
    assert status == 401, refused
    assert "revoked" in str(refused["message"])


UNSTORABLE = [
    ("POST", "/admin/tokens/%00/rotate", b""),
    ("DELETE", "/admin/tokens/%00", b""),
    ("DELETE", "/admin/keys/%00", b""),
    ("PUT", "/admin/webhooks/endpoints/vk:%00", b'{"url": "https://hooks.example.com/x"}'),
    ("POST", "/admin/reservations/%00/release", b""),
    ("POST", "/admin/jobs/%00/reconcile", b""),
    ("POST", "/admin/admission/q-%00/cancel", b""),
    ("POST", "/admin/schemas/a%00/b/accept", b""),
    ("POST", "/admin/webhooks/deliveries/%00/redeliver", b""),
    ("GET", "/admin/jobs/%00", b""),
    ("GET", "/admin/audit?actor=%00", b""),
    ("GET", "/admin/keys?team=a%00b", b""),
    ("PUT", "/admin/budgets/nul", json.dumps({**BUDGET, "subject": "a\x00b"}).encode()),
    (
        "PUT",
        "/admin/budgets/lone",
        b'{"scope": "team", "subject": "\\ud800", "window": "day", "limit_usd": 1}',
    ),
    ("POST", "/admin/keys", json.dumps({"name": "k", "team": "t\x00"}).encode()),
    ("POST", "/admin/keys", b'{"name": "k", "team": "t", "allowed_models": ["\\udfff"]}'),
    ("PUT", "/admin/webhooks/endpoints/vk:abc", b'{"url": "https://h.example.com/\\u0000"}'),
    ("POST", "/admin/tokens", b'{"name": "n", "role": "viewer", "\\u0000": 1}'),
]


async def test_nul_and_lone_surrogates_are_400_and_record_nothing(admin: Admin) -> None:
    """Each such call, on every kind of admin route, is 400 in the upstream envelope naming
    the character, and the audit trail is unchanged."""
    before = await admin.audit_rows()
    for method, path, body in UNSTORABLE:
        status, doc = await admin.call(method, path, body=body)
        assert status == 400, (method, path, status, doc)
        assert doc["code"] == 400
        assert "NUL character or a lone surrogate" in str(doc["message"]), doc
    assert await admin.audit_rows() == before
    status, _ = await admin.call("PUT", "/admin/budgets/plain", body=json.dumps(BUDGET).encode())
    assert status == 200
    assert await admin.audit_rows() == before + 1


async def test_a_budget_subject_is_as_long_as_a_team_at_most(admin: Admin) -> None:
    """A budget's subject of 128 characters (a team's, a project's most) is stored; a 1 MB one
    is 400 naming the field, and the audit trail holds only the first."""
    before = await admin.audit_rows()
    fits = json.dumps({**BUDGET, "subject": "t" * 128}).encode()
    assert (await admin.call("PUT", "/admin/budgets/long", body=fits))[0] == 200
    huge = json.dumps({**BUDGET, "subject": "t" * 1_000_000}).encode()
    status, doc = await admin.call("PUT", "/admin/budgets/huge", body=huge)
    assert status == 400, doc
    assert doc["errors"] == [
        {"field": "subject", "problem": "String should have at most 128 characters"}
    ]
    assert await admin.audit_rows() == before + 1


async def test_aiohttps_own_refusals_are_in_the_envelope(admin: Admin) -> None:
    """No such admin route (404), a method the route does not take (405) and a body over the
    listener's limit (413) answer in the upstream's envelope, like every other admin error."""
    for method, path, status in (
        ("GET", "/admin/nowhere", 404),
        ("GET", "/admin/", 404),
        ("PATCH", "/admin/budgets/b", 405),
        ("POST", "/admin/jobs", 405),
    ):
        got, doc = await admin.call(method, path)
        assert got == status, (method, path, doc)
        assert doc["code"] == status
        assert str(doc["message"]).startswith(("Not found: ", "Method not allowed: "))
        assert doc["request_id"]
    huge = json.dumps({"name": "k", "team": "t" * 2_000_000}).encode()
    headers = {"Authorization": f"Bearer {CONFIG_TOKEN}", "Content-Type": "application/json"}
    async with admin.http.post(
        admin.base + "/admin/keys", data=io.BytesIO(huge), headers=headers
    ) as resp:
        doc = await resp.json(content_type=None)
    assert (resp.status, doc["code"]) == (413, 413), doc
