"""The operator's recovery, admission and schema actions are audited with their before and
after, and refused admin calls (bad input, unknown ids) answer 4xx and record nothing."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from harness.config import settings_for
from proxy.admin import create_admin_app
from proxy.stores.records import BudgetScope, Intent, unknown_task_id
from proxy.telemetry.metrics import Metrics
from tests.e2e.admission_support import poll_to_end, submit, virtual_key
from tests.e2e.conftest import Stack
from tests.e2e.test_admission_behaviour import _stack as admission_stack
from tests.stores.helpers import new_job

ServerFactory = Callable[..., Awaitable[TestServer]]
TOKEN = "actions-operator-token"
SLUG = "vidu/vidu-q3-t2v"


async def test_recovery_and_schema_actions_are_audited(
    make_stack: Callable[..., Awaitable[Stack]], aiohttp_server: ServerFactory, store_url: str
) -> None:
    """Releasing a reservation, reconciling an unknown record and accepting a schema are rows
    with before and after; calls refused for bad input or unknown ids leave no row."""
    stack = await make_stack(store={"url": store_url})
    store = stack.runtime.open_store()
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
    record = await store.intent_to_unknown(intent, "connection reset")
    assert record is not None
    assert await store.expire_overdue(now, 86400.0) == []  # the watcher's sweep leaves it be
    await store.insert_job(new_job("t-hook", callback_url="https://hooks.example.com/done"))
    await store.observe("t-hook", "failed", now, source="watcher")
    await store.record_schema(SLUG, "h1", '{"type": "object"}', now, follow=False)
    await store.record_schema(SLUG, "h2", '{"type": "object", "title": "2"}', now, follow=False)

    settings = settings_for(stack.sim_url, admin={"enabled": True, "token": TOKEN})
    server = await aiohttp_server(create_admin_app(settings, Metrics(), stack.runtime))
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            async with http.request(method, base + path, json=body) as resp:
                return resp.status, await resp.json(content_type=None)

        assert (await call("POST", "/admin/reservations/r-dead/release"))[0] == 200
        status, closed = await call("POST", f"/admin/jobs/{record.task_id}/reconcile")
        assert (status, closed["status"]) == (200, "failed")
        assert (await call("POST", f"/admin/schemas/{SLUG}/accept"))[0] == 200
        assert (await call("POST", "/admin/webhooks/deliveries/t-hook/redeliver"))[0] == 202
        refused = [
            await call("POST", "/admin/reservations/r-dead/release"),
            await call("POST", f"/admin/jobs/{record.task_id}/reconcile"),
            await call("POST", f"/admin/schemas/{SLUG}/accept", {"hash": "nope"}),
            await call("POST", "/admin/tokens", {"name": "x", "role": "root"}),
            await call("POST", "/admin/tokens", {"name": "config", "role": "viewer"}),
            await call("POST", "/admin/tokens", ["not", "an", "object"]),
            await call("POST", "/admin/tokens/aaaaaaaaaaaa/rotate"),
            await call("DELETE", "/admin/tokens/aaaaaaaaaaaa"),
            await call("POST", "/admin/admission/q-none/cancel"),
            await call("POST", "/admin/webhooks/deliveries/none/redeliver"),
            await call("GET", "/admin/audit?since=yesterday"),
            await call("GET", "/admin/audit?limit=ten"),
        ]
        assert [s for s, _ in refused] == [
            404,
            409,
            404,
            400,
            400,
            400,
            404,
            404,
            404,
            404,
            400,
            400,
        ]
        assert [doc["code"] for _, doc in refused] == [s for s, _ in refused]  # the envelope
        status, page = await call("GET", "/admin/audit")
    assert status == 200
    rows = {r["action"]: r for r in page["rows"]}
    assert list(rows) == [
        "reservation.release", "job.reconcile", "schema.accept", "webhook.redeliver",
    ]  # fmt: skip
    redelivered = rows["webhook.redeliver"]
    assert redelivered["subject"] == "t-hook"
    assert redelivered["before"]["task_id"] == redelivered["after"]["task_id"] == "t-hook"
    assert "body" not in redelivered["after"]
    assert rows["reservation.release"]["subject"] == "r-dead"
    assert rows["job.reconcile"]["before"]["status"] == "unknown"
    assert rows["job.reconcile"]["after"]["status"] == "failed"
    assert rows["schema.accept"]["before"]["pinned_hash"] == "h1"
    assert rows["schema.accept"]["after"]["pinned_hash"] == "h2"
    assert "r-dead" not in {h.reservation_id for h in await store.open_reservations(100)}


async def test_an_operator_cancels_a_queued_submit(
    make_stack: Callable[..., Awaitable[Stack]], aiohttp_server: ServerFactory
) -> None:
    """POST /admin/admission/{q-id}/cancel cancels a queued submit (its client then sees it
    cancelled, its reservation released) and is audited; a second cancel is 409, unrecorded."""
    stack, store = await admission_stack(make_stack)
    _, token = await virtual_key(store, team="studio")
    settings = settings_for(stack.sim_url, admin={"enabled": True, "token": TOKEN})
    server = await aiohttp_server(create_admin_app(settings, Metrics(), stack.runtime))
    admin = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        assert (await submit(http, stack.proxy_url, token, "first"))[0] == 200
        _, queued, _ = await submit(http, stack.proxy_url, token, "second")
        queue_id = queued["data"]["task_id"]
        assert queue_id.startswith("q-")
        cancel = server.make_url(f"/admin/admission/{queue_id}/cancel")
        async with http.post(cancel, headers=admin) as resp:
            assert resp.status == 200
            assert (await resp.json())["state"] == "cancelled"
        async with http.post(cancel, headers=admin) as resp:
            assert resp.status == 409
        doc = await poll_to_end(http, stack.proxy_url, token, queue_id, within=5)
        assert doc["data"]["status"] == "failed"
        async with http.get(server.make_url("/admin/audit"), headers=admin) as resp:
            rows = (await resp.json())["rows"]
    assert [(r["action"], r["subject"]) for r in rows] == [("admission.cancel", queue_id)]
    assert (rows[0]["before"]["state"], rows[0]["after"]["state"]) == ("queued", "cancelled")
    assert len(await store.open_reservations()) == 1  # only the running job's
