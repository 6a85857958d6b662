"""Every admin route that changes something writes an audit row, in the change's own
transaction: the routes the admin application serves with a method other than GET are each
either audited under a named action (one call of each to success is exactly its row) or
exempt with a reason written down here; and when the row cannot be written, every one of
those calls fails and changes nothing, on each engine."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from harness.config import settings_for
from proxy.admin import create_admin_app
from proxy.audit.tokens import new_admin_token
from proxy.stores.audit_records import Role
from proxy.stores.base import Store
from proxy.stores.records import Budget, BudgetScope, Intent, unknown_task_id
from proxy.telemetry.metrics import Metrics
from tests.e2e.admission_support import submit, virtual_key
from tests.e2e.conftest import Stack
from tests.e2e.test_admission_behaviour import _stack as admission_stack
from tests.stores.helpers import new_job, raw_query

ServerFactory = Callable[..., Awaitable[TestServer]]
TOKEN = "coverage-operator-token"
SLUG = "vidu/vidu-q3-t2v"
Route = tuple[str, str]

AUDITED: dict[Route, str] = {
    ("POST", "/admin/jobs/{task_id}/reconcile"): "job.reconcile",
    ("POST", "/admin/reservations/{reservation_id}/release"): "reservation.release",
    ("POST", "/admin/keys"): "key.create",
    ("DELETE", "/admin/keys/{key_id}"): "key.revoke",
    ("PUT", "/admin/budgets/{name}"): "budget.put",
    ("DELETE", "/admin/budgets/{name}"): "budget.delete",
    ("POST", "/admin/webhooks/deliveries/{delivery_id}/redeliver"): "webhook.redeliver",
    ("PUT", "/admin/webhooks/endpoints/{caller}"): "webhook_endpoint.put",
    ("DELETE", "/admin/webhooks/endpoints/{caller}"): "webhook_endpoint.delete",
    ("POST", "/admin/admission/{queue_id}/cancel"): "admission.cancel",
    ("POST", "/admin/schemas/{provider}/{model}/accept"): "schema.accept",
    ("POST", "/admin/tokens"): "admin_token.add",
    ("POST", "/admin/tokens/{token_id}/rotate"): "admin_token.rotate",
    ("DELETE", "/admin/tokens/{token_id}"): "admin_token.revoke",
}
EXEMPT: dict[Route, str] = {}  # route -> why a success changes nothing to record
VIEWS = (
    "/admin/budgets", "/admin/keys?include_revoked=true", "/admin/tokens?include_revoked=true",
    "/admin/webhooks/endpoints", "/admin/reservations", "/admin/admission",
    f"/admin/schemas/{SLUG}", "/admin/webhooks/deliveries/t-hook", "/admin/audit",
)  # fmt: skip
AUDIT_OFF = {
    "sqlite": [
        "CREATE TRIGGER audit_off BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'off'); END"
    ],
    "postgres": [
        "CREATE FUNCTION audit_off() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN RAISE EXCEPTION 'audit off'; END$$",
        "CREATE TRIGGER audit_off BEFORE INSERT ON audit_log FOR EACH ROW"
        " EXECUTE FUNCTION audit_off()",
    ],
}


@dataclass(frozen=True)
class Call:
    """One call of an audited route, its status on success, and the row's subject
    (``None``: the id the answer names)."""

    route: Route
    path: str
    body: Any
    status: int
    subject: str | None


@dataclass
class Admin:
    stack: Stack
    base: str
    http: aiohttp.ClientSession
    calls: list[Call]

    async def send(self, call: Call, request_id: str) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Request-Id": request_id}
        url = self.base + call.path
        async with self.http.request(call.route[0], url, json=call.body, headers=headers) as r:
            return r.status, await r.json(content_type=None)

    async def views(self) -> list[Any]:
        seen = []
        for path in VIEWS:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with self.http.get(self.base + path, headers=headers) as resp:
                seen.append((resp.status, await resp.json()))
        return seen


async def _seeded(store: Store, queue_id: str) -> list[Call]:
    """Something for every audited route to change; the calls that change it, in order."""
    now = time.time()
    held = await store.budget_reserve(
        [BudgetScope("team:a", 0.0, 10_000_000)], 5, reservation_id="r-dead", owner="gone", at=now
    )
    assert held.ok
    # submitted now: the expiry sweep ends jobs a day old, and new_job's default is older
    intent = Intent(
        intent_id="i1", owner="gone", created_at=now,
        job=new_job(unknown_task_id("i1"), submitted_at=now, next_poll_at=None),
    )  # fmt: skip
    await store.open_intent(intent)
    unknown = await store.intent_to_unknown(intent, "connection reset")
    assert unknown is not None
    assert await store.expire_overdue(now, 86400.0) == []  # the watcher's sweep leaves it be
    await store.insert_job(new_job("t-hook", callback_url="https://hooks.example.com/done"))
    await store.observe("t-hook", "failed", now, source="watcher")
    await store.record_schema(SLUG, "h1", '{"type": "object"}', now, follow=False)
    await store.record_schema(SLUG, "h2", '{"type": "object", "title": "2"}', now, follow=False)
    key_id, _ = await virtual_key(store, team="old")
    record, _ = new_admin_token("seeded", Role.VIEWER, now)
    await store.create_admin_token(record)
    await store.set_webhook_endpoint("vk:abc", "https://hooks.example.com/x", now)
    await store.put_budget(
        Budget("old", "team", "t", "day", 1_000_000, hard=True, created_at=now, updated_at=now)
    )
    budget = {"scope": "team", "subject": "t", "window": "day", "limit_usd": 1}
    token_id = record.token_id
    by_route = {
        ("POST", "/admin/jobs/{task_id}/reconcile"): (
            f"/admin/jobs/{unknown.task_id}/reconcile", None, 200, unknown.task_id),
        ("POST", "/admin/reservations/{reservation_id}/release"): (
            "/admin/reservations/r-dead/release", None, 200, "r-dead"),
        ("POST", "/admin/keys"): ("/admin/keys", {"name": "k", "team": "t"}, 201, None),
        ("DELETE", "/admin/keys/{key_id}"): (f"/admin/keys/{key_id}", None, 200, key_id),
        ("PUT", "/admin/budgets/{name}"): ("/admin/budgets/cov", budget, 200, "cov"),
        ("DELETE", "/admin/budgets/{name}"): ("/admin/budgets/old", None, 200, "old"),
        ("POST", "/admin/webhooks/deliveries/{delivery_id}/redeliver"): (
            "/admin/webhooks/deliveries/t-hook/redeliver", None, 202, "t-hook"),
        ("PUT", "/admin/webhooks/endpoints/{caller}"): (
            "/admin/webhooks/endpoints/vk:new", {"url": "https://h.example.com/"}, 200, "vk:new"),
        ("DELETE", "/admin/webhooks/endpoints/{caller}"): (
            "/admin/webhooks/endpoints/vk:abc", None, 200, "vk:abc"),
        ("POST", "/admin/admission/{queue_id}/cancel"): (
            f"/admin/admission/{queue_id}/cancel", None, 200, queue_id),
        ("POST", "/admin/schemas/{provider}/{model}/accept"): (
            f"/admin/schemas/{SLUG}/accept", None, 200, SLUG),
        ("POST", "/admin/tokens"): ("/admin/tokens", {"name": "cov", "role": "viewer"}, 201, None),
        ("POST", "/admin/tokens/{token_id}/rotate"): (
            f"/admin/tokens/{token_id}/rotate", None, 200, token_id),
        ("DELETE", "/admin/tokens/{token_id}"): (f"/admin/tokens/{token_id}", None, 200, token_id),
    }  # fmt: skip
    assert set(by_route) == set(AUDITED)
    return [Call(route, *by_route[route]) for route in AUDITED]


async def _admin(
    make_stack: Callable[..., Awaitable[Stack]],
    aiohttp_server: ServerFactory,
    http: aiohttp.ClientSession,
    store_url: str,
) -> Admin:
    async def on_store(*args: Any, **kwargs: Any) -> Stack:
        return await make_stack(*args, store={"url": store_url}, **kwargs)

    stack, store = await admission_stack(on_store)
    _, client_key = await virtual_key(store, team="studio")
    assert (await submit(http, stack.proxy_url, client_key, "first"))[0] == 200
    _, queued, _ = await submit(http, stack.proxy_url, client_key, "second")
    calls = await _seeded(store, queued["data"]["task_id"])
    settings = settings_for(stack.sim_url, admin={"enabled": True, "token": TOKEN})
    app = create_admin_app(settings, Metrics(), stack.runtime)
    server = await aiohttp_server(app)
    return Admin(stack, str(server.make_url("")).rstrip("/"), http, calls)


def _changing_routes(app: web.Application) -> set[Route]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method not in {"GET", "HEAD"}
    }


async def test_every_changing_admin_route_is_audited_or_exempt(
    make_stack: Callable[..., Awaitable[Stack]], aiohttp_server: ServerFactory, store_url: str
) -> None:
    """Each route is named once (audited or exempt), and one successful call of each audited
    route is exactly one row, with its action and subject, under that call's request id."""
    async with aiohttp.ClientSession() as http:
        admin = await _admin(make_stack, aiohttp_server, http, store_url)
        app = create_admin_app(settings_for(admin.stack.sim_url), Metrics(), admin.stack.runtime)
        assert not set(AUDITED) & set(EXEMPT)
        assert _changing_routes(app) == set(AUDITED) | set(EXEMPT)
        called: dict[str, tuple[str, str]] = {}
        for n, call in enumerate(admin.calls):
            request_id = f"cov-{n:02d}"
            status, doc = await admin.send(call, request_id)
            assert status == call.status, (call, doc)
            subject = call.subject or str(doc.get("key_id") or doc.get("token_id"))
            called[request_id] = (AUDITED[call.route], subject)
        _, (_, page) = (await admin.views())[-2:]
    found = {r["request_id"]: (r["action"], r["subject"]) for r in page["rows"]}
    assert len(page["rows"]) == len(found) == len(AUDITED)
    assert found == called


async def test_a_change_whose_row_cannot_be_written_is_not_made(
    make_stack: Callable[..., Awaitable[Stack]], aiohttp_server: ServerFactory, store_url: str
) -> None:
    """With the audit log refusing inserts (a trigger), every audited call fails (5xx) after
    its change ran in the same transaction, and every admin view reads as before."""
    engine = "sqlite" if store_url.startswith("sqlite") else "postgres"
    async with aiohttp.ClientSession() as http:
        admin = await _admin(make_stack, aiohttp_server, http, store_url)
        before = await admin.views()
        for sql in AUDIT_OFF[engine]:
            await raw_query(store_url, sql)
        for n, call in enumerate(admin.calls):
            status, doc = await admin.send(call, f"off-{n:02d}")
            assert status >= 500, (call, status, doc)
        drop = "DROP TRIGGER audit_off" + (" ON audit_log" if engine == "postgres" else "")
        await raw_query(store_url, drop)
        assert await admin.views() == before
