"""A scripted admin session by three tokens of different roles, over loopback, on each engine:
every change is in the audit trail with its before and after, every out-of-role attempt is
refused and changes nothing, and ``modellix-proxy audit verify`` passes until a row is edited
or deleted in the database, when it names them."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from harness.config import clean_environ, settings_for
from proxy.admin import create_admin_app
from proxy.telemetry.metrics import Metrics
from tests.e2e.conftest import Stack
from tests.stores.helpers import raw_query

ServerFactory = Callable[..., Awaitable[TestServer]]
CONFIG_TOKEN = "config-operator-token-0001"


@dataclass
class Session:
    """The admin API's base URL and what each scripted step did."""

    base: str
    http: aiohttp.ClientSession
    tokens: dict[str, str] = field(default_factory=dict)
    steps: int = 0
    changes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # request id -> row
    refused: list[str] = field(default_factory=list)

    async def call(
        self, who: str, method: str, path: str, body: Any = None, *, expect: int
    ) -> dict[str, Any]:
        """One admin action by ``who``; asserts its status and returns its JSON."""
        self.steps += 1
        request_id = f"step-{self.steps:02d}"
        headers = {"Authorization": f"Bearer {self.tokens[who]}", "X-Request-Id": request_id}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            doc: dict[str, Any] = await r.json(content_type=None)
        assert r.status == expect, (method, path, who, r.status, doc)
        return doc

    async def change(
        self, who: str, method: str, path: str, body: Any, action: str, subject: str, expect: int
    ) -> dict[str, Any]:
        """An allowed change: its row is expected under this step's request id."""
        doc = await self.call(who, method, path, body, expect=expect)
        self.changes[f"step-{self.steps:02d}"] = (who, action, subject)
        return doc

    async def state(self) -> str:
        """Everything the session can change (and the trail itself), as the operator reads it."""
        parts = []
        for path in (
            "/admin/keys?include_revoked=true", "/admin/budgets", "/admin/webhooks/endpoints",
            "/admin/tokens?include_revoked=true", "/admin/audit?limit=1000",
        ):  # fmt: skip
            parts.append(json.dumps(await self.read(path), sort_keys=True))
        return "\n".join(parts)

    async def read(self, path: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {CONFIG_TOKEN}"}
        async with self.http.get(self.base + path, headers=headers) as resp:
            doc: dict[str, Any] = await resp.json()
        return doc

    async def refuse(self, who: str, method: str, path: str, body: Any, needed: str) -> None:
        """An out-of-role attempt: 403 naming the role needed, and nothing changed."""
        before = await self.state()
        doc = await self.call(who, method, path, body, expect=403)
        assert doc["code"] == 403
        assert doc["message"].startswith("Forbidden: ")
        assert f"needs the {needed} role" in doc["message"]
        assert doc["role_needed"] == needed
        assert await self.state() == before
        self.refused.append(f"step-{self.steps:02d}")


async def _verify(store_url: str) -> tuple[int, str]:
    env = {**clean_environ(), "MODELLIX_PROXY_STORE__URL": store_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "audit", "verify", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def _script(s: Session) -> None:
    """Thirty admin actions by an operator (the configured token), a finance and a viewer."""
    fin = await s.change("ops", "POST", "/admin/tokens", {"name": "fin-ann", "role": "finance"},
                         "admin_token.add", "", 201)  # fmt: skip
    s.tokens["fin"] = fin["token"]
    view = await s.change("ops", "POST", "/admin/tokens", {"name": "viewer-vic", "role": "viewer"},
                          "admin_token.add", "", 201)  # fmt: skip
    s.tokens["view"] = view["token"]
    k1 = await s.change("ops", "POST", "/admin/keys", {"team": "a"}, "key.create", "", 201)
    k2 = await s.change("ops", "POST", "/admin/keys", {"team": "b"}, "key.create", "", 201)
    budget = {"scope": "team", "subject": "a", "window": "month", "limit_usd": 10}
    await s.change("fin", "PUT", "/admin/budgets/team-a", budget, "budget.put", "team-a", 200)
    raised = {**budget, "limit_usd": 20}
    await s.change("fin", "PUT", "/admin/budgets/team-a", raised, "budget.put", "team-a", 200)
    await s.refuse("view", "PUT", "/admin/budgets/team-a", {**budget, "limit_usd": 99}, "finance")
    await s.call("view", "GET", "/admin/budgets", expect=200)
    await s.refuse("view", "DELETE", f"/admin/keys/{k1['key_id']}", None, "operator")
    await s.refuse("fin", "DELETE", f"/admin/keys/{k1['key_id']}", None, "operator")
    await s.change("ops", "DELETE", f"/admin/keys/{k1['key_id']}", None, "key.revoke",
                   k1["key_id"], 200)  # fmt: skip
    await s.refuse("fin", "POST", "/admin/keys", {"team": "c"}, "operator")
    caller = f"vk:{k2['key_id']}"
    hook = {"url": "https://hooks.example.com/done"}
    await s.change("ops", "PUT", f"/admin/webhooks/endpoints/{caller}", hook,
                   "webhook_endpoint.put", caller, 200)  # fmt: skip
    await s.refuse("view", "PUT", f"/admin/webhooks/endpoints/{caller}", hook, "operator")
    await s.change("ops", "DELETE", f"/admin/webhooks/endpoints/{caller}", None,
                   "webhook_endpoint.delete", caller, 200)  # fmt: skip
    await s.call("view", "GET", "/admin/audit", expect=200)
    await s.call("fin", "GET", "/admin/report?format=json", expect=200)
    await s.refuse("view", "POST", "/admin/tokens", {"name": "me", "role": "operator"}, "operator")
    await s.change("fin", "DELETE", "/admin/budgets/team-a", None, "budget.delete", "team-a", 200)
    await s.refuse("view", "DELETE", "/admin/budgets/team-a", None, "finance")
    old_view = s.tokens["view"]
    rotated = await s.change("ops", "POST", f"/admin/tokens/{view['token_id']}/rotate", None,
                             "admin_token.rotate", view["token_id"], 200)  # fmt: skip
    s.tokens["view"], s.tokens["old-view"] = rotated["token"], old_view
    await s.call("old-view", "GET", "/admin/jobs", expect=401)
    await s.call("view", "GET", "/admin/jobs", expect=200)
    cap = {"scope": "global", "window": "day", "limit_usd": 5}
    await s.change("fin", "PUT", "/admin/budgets/global-cap", cap, "budget.put", "global-cap", 200)
    await s.call("ops", "POST", "/admin/reservations/nope/release", expect=404)
    await s.refuse("view", "POST", "/admin/jobs/unknown:x/reconcile", None, "operator")
    await s.call("ops", "POST", "/admin/schemas/minimax/none/accept", expect=404)
    await s.refuse("fin", "POST", "/admin/webhooks/deliveries/d1/redeliver", None, "operator")
    await s.change("ops", "DELETE", f"/admin/tokens/{fin['token_id']}", None,
                   "admin_token.revoke", fin["token_id"], 200)  # fmt: skip
    await s.call("fin", "PUT", "/admin/budgets/late", cap, expect=401)
    for step, (who, action, subject) in list(s.changes.items()):
        if not subject:  # the created token's or key's id, known from its answer
            s.changes[step] = (who, action, {"step-01": fin["token_id"], "step-02":
                               view["token_id"], "step-03": k1["key_id"],
                               "step-04": k2["key_id"]}[step])  # fmt: skip


async def test_a_scripted_session_is_audited_and_verifiable(
    make_stack: Callable[..., Awaitable[Stack]],
    aiohttp_server: ServerFactory,
    store_url: str,
) -> None:
    """Thirty actions by three roles: each change is one row with its before and after, each
    out-of-role attempt a 403 that changed nothing; verify passes, then names tampered rows."""
    stack = await make_stack(store={"url": store_url})
    settings = settings_for(
        stack.sim_url, admin={"enabled": True, "token": CONFIG_TOKEN, "token_cache_seconds": 0}
    )
    server = await aiohttp_server(create_admin_app(settings, Metrics(), stack.runtime))
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        session = Session(base, http, {"ops": CONFIG_TOKEN})
        with capture_logs() as logs:
            await _script(session)
        rows = (await session.read("/admin/audit?limit=1000"))["rows"]
        paged = await session.read("/admin/audit?limit=5")
        second = await session.read(f"/admin/audit?limit=5&after={paged['next_cursor']}")
        by_actor = await session.read("/admin/audit?actor=fin-ann")
    assert session.steps == 30
    assert len(session.refused) == 9
    names = {"ops": "config", "fin": "fin-ann", "view": "viewer-vic"}
    assert {r["request_id"]: (r["actor"], r["action"], r["subject"]) for r in rows} == {
        step: (names[who], action, subject)
        for step, (who, action, subject) in session.changes.items()
    }
    assert {(r["peer"], r["origin"]) for r in rows} == {("127.0.0.1", "api")}
    by_step = {r["request_id"]: r for r in rows}
    assert by_step["step-05"]["before"] is None
    assert by_step["step-05"]["after"]["limit_usd"] == 10
    assert by_step["step-06"]["before"]["limit_usd"] == 10
    assert by_step["step-06"]["after"]["limit_usd"] == 20
    assert by_step["step-11"]["before"]["active"] is True
    assert by_step["step-11"]["after"]["active"] is False
    assert by_step["step-13"]["before"] == {"url": None}
    assert by_step["step-13"]["after"] == {"url": "https://hooks.example.com/done"}
    assert by_step["step-19"]["before"]["limit_usd"] == 20
    assert by_step["step-19"]["after"] is None
    assert by_step["step-21"]["before"]["rotated_at"] is None
    assert by_step["step-21"]["after"]["rotated_at"] is not None
    text = json.dumps(rows)
    for secret in ("mlx-vk-", "mlx-adm-", "key_hash", "token_hash", CONFIG_TOKEN):
        assert secret not in text
    assert [r["seq"] for r in paged["rows"] + second["rows"]] == list(range(1, 11))
    assert {r["actor"] for r in by_actor["rows"]} == {"fin-ann"}
    logged = [e for e in logs if e["event"] == "audit.recorded"]
    assert [(e["seq"], e["action"]) for e in logged] == [(r["seq"], r["action"]) for r in rows]
    assert all("mlx-" not in json.dumps(e, default=str) for e in logged)

    code, out = await _verify(store_url)
    assert code == 0, out
    assert f"intact: {len(rows)} rows checked" in out
    await raw_query(
        store_url, "UPDATE audit_log SET after_json = '{\"limit_usd\":1000}' WHERE seq = 6"
    )
    await raw_query(store_url, "DELETE FROM audit_log WHERE seq = 9")
    code, out = await _verify(store_url)
    assert code == 1, out
    assert "row 6: edited" in out
    assert "row 9: deleted" in out
    assert out.count("audit: row") == 2, out
