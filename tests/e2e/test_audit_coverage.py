"""Every admin route that changes something writes an audit row: the routes the admin
application serves with a method other than GET are each either audited under a named
action, shown by calling each one once to success and finding exactly its row, or exempt
with a reason written down here."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from harness.config import settings_for
from proxy.admin import create_admin_app
from proxy.stores.records import BudgetScope, Intent, unknown_task_id
from proxy.telemetry.metrics import Metrics
from tests.e2e.admission_support import submit, virtual_key
from tests.e2e.conftest import Stack
from tests.e2e.test_admission_behaviour import _stack as admission_stack
from tests.stores.helpers import new_job

ServerFactory = Callable[..., Awaitable[TestServer]]
TOKEN = "coverage-operator-token"
SLUG = "vidu/vidu-q3-t2v"

AUDITED: dict[tuple[str, str], str] = {
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
EXEMPT: dict[tuple[str, str], str] = {}  # route -> why a success changes nothing to record


def _changing_routes(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method not in {"GET", "HEAD"}
    }


async def test_every_changing_admin_route_is_audited_or_exempt(
    make_stack: Callable[..., Awaitable[Stack]], aiohttp_server: ServerFactory
) -> None:
    """Each route is named once (audited or exempt), and one successful call of each audited
    route is exactly one row, with its action, under that call's request id."""
    stack, store = await admission_stack(make_stack)
    settings = settings_for(stack.sim_url, admin={"enabled": True, "token": TOKEN})
    app = create_admin_app(settings, Metrics(), stack.runtime)
    assert not set(AUDITED) & set(EXEMPT)
    assert _changing_routes(app) == set(AUDITED) | set(EXEMPT)

    now = time.time()
    held = await store.budget_reserve(
        [BudgetScope("team:a", 0.0, 10_000_000)], 5, reservation_id="r-dead", owner="gone", at=now
    )
    assert held.ok
    intent = Intent(
        intent_id="i1", owner="gone", created_at=now,
        job=new_job(unknown_task_id("i1"), next_poll_at=None),
    )  # fmt: skip
    await store.open_intent(intent)
    unknown = await store.intent_to_unknown(intent, "connection reset")
    assert unknown is not None
    await store.insert_job(new_job("t-hook", callback_url="https://hooks.example.com/done"))
    await store.observe("t-hook", "failed", now, source="watcher")
    await store.record_schema(SLUG, "h1", '{"type": "object"}', now, follow=False)
    await store.record_schema(SLUG, "h2", '{"type": "object", "title": "2"}', now, follow=False)
    _, client_key = await virtual_key(store, team="studio")

    server = await aiohttp_server(app)
    called: dict[str, tuple[str, str]] = {}  # request id -> (route's action, subject)
    async with aiohttp.ClientSession() as http:
        assert (await submit(http, stack.proxy_url, client_key, "first"))[0] == 200
        _, queued, _ = await submit(http, stack.proxy_url, client_key, "second")
        queue_id = queued["data"]["task_id"]

        async def change(
            route: tuple[str, str], path: str, body: Any, status: int, subject: str | None = None
        ) -> dict[str, Any]:
            """One successful call; ``subject`` ``None``: the id the answer names."""
            request_id = f"cov-{len(called):02d}"
            headers = {"Authorization": f"Bearer {TOKEN}", "X-Request-Id": request_id}
            url = server.make_url(path)
            async with http.request(route[0], url, json=body, headers=headers) as resp:
                doc: dict[str, Any] = await resp.json(content_type=None)
            assert resp.status == status, (route, doc)
            named = subject if subject is not None else doc.get("key_id", doc.get("token_id"))
            called[request_id] = (AUDITED[route], str(named))
            return doc

        routes = iter(AUDITED)
        reconcile = f"/admin/jobs/{unknown.task_id}/reconcile"
        await change(next(routes), reconcile, None, 200, unknown.task_id)
        await change(next(routes), "/admin/reservations/r-dead/release", None, 200, "r-dead")
        key = await change(next(routes), "/admin/keys", {"name": "k", "team": "t"}, 201)
        await change(next(routes), f"/admin/keys/{key['key_id']}", None, 200, str(key["key_id"]))
        budget = {"scope": "team", "subject": "t", "window": "day", "limit_usd": 1}
        await change(next(routes), "/admin/budgets/cov", budget, 200, "cov")
        await change(next(routes), "/admin/budgets/cov", None, 200, "cov")
        await change(next(routes), "/admin/webhooks/deliveries/t-hook/redeliver", None, 202,
                     "t-hook")  # fmt: skip
        hook = {"url": "https://hooks.example.com/x"}
        await change(next(routes), "/admin/webhooks/endpoints/vk:abc", hook, 200, "vk:abc")
        await change(next(routes), "/admin/webhooks/endpoints/vk:abc", None, 200, "vk:abc")
        await change(next(routes), f"/admin/admission/{queue_id}/cancel", None, 200, queue_id)
        await change(next(routes), f"/admin/schemas/{SLUG}/accept", None, 200, SLUG)
        added = await change(next(routes), "/admin/tokens", {"name": "cov", "role": "viewer"}, 201)
        token_id = str(added["token_id"])
        await change(next(routes), f"/admin/tokens/{token_id}/rotate", None, 200, token_id)
        await change(next(routes), f"/admin/tokens/{token_id}", None, 200, token_id)
        assert next(routes, None) is None  # every audited route was called

        async with http.get(
            server.make_url("/admin/audit?limit=1000"), headers={"Authorization": f"Bearer {TOKEN}"}
        ) as resp:
            rows = (await resp.json())["rows"]
    found = {r["request_id"]: (r["action"], r["subject"]) for r in rows}
    assert len(rows) == len(found) == len(AUDITED)
    assert found == called
