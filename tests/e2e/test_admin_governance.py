"""The governance admin API: virtual keys, budgets with their windows, the spend report."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import settings_for
from proxy.admin import create_admin_app
from proxy.telemetry.metrics import Metrics
from tests.e2e.conftest import Stack
from tests.e2e.test_client_flow import HAILUO, wait_terminal
from tests.support import SIMULATOR_HAILUO_PRICES

ServerFactory = Callable[..., Awaitable[TestServer]]
TOKEN = "admin-secret-token"
SLUG = "minimax/hailuo-02-t2v"
SUBMIT = f"/api/v1/{SLUG}"
COLUMNS = [
    "jobs",
    "succeeded",
    "failed",
    "estimated_usd",
    "spend_usd",
    "cost_per_job_p50_usd",
    "cost_per_job_p95_usd",
    "refused",
    "refused_savings_usd",
    "aliases",
]


@pytest.fixture
async def stack(make_stack: Callable[..., Awaitable[Stack]]) -> Stack:
    """These tests reserve exact Hailuo estimates: an operator table at the simulator's prices."""
    return await make_stack(pricing=SIMULATOR_HAILUO_PRICES)


@pytest.fixture
async def admin(stack: Stack, aiohttp_server: ServerFactory) -> AsyncIterator[Admin]:
    """The admin listener over the stack's runtime, and a session carrying its token."""
    settings = settings_for(stack.sim_url, admin={"enabled": True, "token": TOKEN})
    server = await aiohttp_server(create_admin_app(settings, Metrics(), stack.runtime))
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        yield Admin(base, session)


class Admin:
    """A client of the admin listener that returns (status, JSON body)."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, f"{self.base}{path}", **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def text(self, path: str, **kwargs: Any) -> tuple[int, str, str]:
        async with self.session.get(f"{self.base}{path}", **kwargs) as resp:
            return resp.status, resp.content_type, await resp.text()


def fields(doc: dict[str, Any]) -> set[str]:
    return {problem["field"] for problem in doc["errors"]}


async def test_created_key_is_shown_once(admin: Admin) -> None:
    """The key is in the creation answer only: listings carry neither it nor its hash."""
    status, created = await admin.call(
        "POST",
        "/admin/keys",
        json={
            "name": "render farm",
            "team": "studio-a",
            "project": "trailer",
            "allowed_models": [SLUG],
            "max_concurrent_jobs": 2,
        },
    )
    assert status == 201
    key_id, token = created["key_id"], created["key"]
    assert re.fullmatch(rf"mlx-vk-{key_id}-[A-Za-z0-9_-]{{32,}}", token)
    assert "key_hash" not in created
    assert created["active"] is True
    assert (created["team"], created["project"], created["allowed_models"]) == (
        "studio-a",
        "trailer",
        [SLUG],
    )
    status, _ = await admin.call("POST", "/admin/keys", json={"team": "studio-b"})
    assert status == 201
    status, raw, body = await admin.text("/admin/keys")
    assert (status, raw) == (200, "application/json")
    assert token not in body
    assert hashlib.sha256(token.encode()).hexdigest() not in body
    listed = json.loads(body)["keys"]
    assert len(listed) == 2
    assert all("key" not in k and "key_hash" not in k for k in listed)
    _, only_a = await admin.call("GET", "/admin/keys", params={"team": "studio-a"})
    assert [(k["key_id"], k["max_concurrent_jobs"]) for k in only_a["keys"]] == [(key_id, 2)]


@pytest.mark.parametrize(
    ("body", "wrong"),
    [
        ({"teem": "studio-a"}, {"teem"}),
        ({"max_concurrent_jobs": 0}, {"max_concurrent_jobs"}),
        ({"name": "n" * 129, "expires_at": "soon"}, {"name", "expires_at"}),
        ({"allowed_models": SLUG}, {"allowed_models"}),
    ],
)
async def test_invalid_key_bodies_name_each_field(
    admin: Admin, body: dict[str, Any], wrong: set[str]
) -> None:
    """An invalid key body is a 400 listing every wrong field, and creates nothing."""
    status, doc = await admin.call("POST", "/admin/keys", json=body)
    assert status == 400
    assert fields(doc) == wrong
    assert (await admin.call("GET", "/admin/keys"))[1]["keys"] == []


async def test_key_bodies_that_are_not_json_or_name_unknown_models(admin: Admin) -> None:
    """A non-JSON body and a model the catalog does not pin are both refused with 400."""
    status, doc = await admin.call("POST", "/admin/keys", data=b"{team: a}")
    assert (status, doc["error_type"]) == (400, "malformed_json")
    status, doc = await admin.call(
        "POST", "/admin/keys", json={"allowed_models": [SLUG, "acme/no-such-model"]}
    )
    assert status == 400
    assert "acme/no-such-model" in doc["message"]
    assert SLUG not in doc["message"].split("unknown")[-1]
    assert (await admin.call("GET", "/admin/keys"))[1]["keys"] == []


async def test_revoke_is_once(admin: Admin) -> None:
    """Revoking answers 200 once and 404 after; the revoked key is listed only on request."""
    _, created = await admin.call("POST", "/admin/keys", json={"name": "leaving"})
    key_id = created["key_id"]
    assert await admin.call("DELETE", f"/admin/keys/{key_id}") == (
        200,
        {"key_id": key_id, "revoked": True},
    )
    status, doc = await admin.call("DELETE", f"/admin/keys/{key_id}")
    assert status == 404
    assert key_id in doc["message"]
    assert (await admin.call("DELETE", "/admin/keys/000000000000"))[0] == 404
    assert (await admin.call("GET", "/admin/keys"))[1]["keys"] == []
    _, doc = await admin.call("GET", "/admin/keys", params={"include_revoked": "true"})
    [revoked] = doc["keys"]
    assert (revoked["key_id"], revoked["active"]) == (key_id, False)
    assert revoked["revoked_at"] is not None


@pytest.mark.parametrize(
    ("name", "body", "wrong"),
    [
        ("all", {"scope": "global", "subject": "studio-a", "limit_usd": "5"}, {"subject"}),
        ("team-a", {"scope": "team", "limit_usd": "5"}, {"subject"}),
        ("all", {"scope": "global", "window": "week", "limit_usd": "5"}, {"window"}),
        ("all", {"scope": "global", "limit_usd": "0"}, {"limit_usd"}),
        ("all", {"scope": "planet", "limit_usd": "5"}, {"scope"}),
        ("all", {"scope": "global", "limit_usd": "5", "colour": "red"}, {"colour"}),
        ("bad name!", {"scope": "global", "limit_usd": "5"}, {"name"}),
    ],
)
async def test_invalid_budgets_name_each_field(
    admin: Admin, name: str, body: dict[str, Any], wrong: set[str]
) -> None:
    """An invalid budget is a 400 naming what is wrong, and stores nothing."""
    status, doc = await admin.call("PUT", f"/admin/budgets/{name}", json=body)
    assert status == 400
    assert fields(doc) == wrong
    if wrong == {""}:  # the scope/subject rule spans two fields: it explains itself
        assert "subject is required for key/team/project budgets" in doc["errors"][0]["problem"]
    assert (await admin.call("GET", "/admin/budgets"))[1]["budgets"] == []


async def test_budget_body_must_be_an_object(admin: Admin) -> None:
    """A budget body that is not a JSON object is a 400."""
    status, doc = await admin.call("PUT", "/admin/budgets/all", json=["global", 5])
    assert status == 400
    assert "JSON object" in doc["message"]


async def test_budgets_show_their_window_and_are_deleted(
    stack: Stack, http: aiohttp.ClientSession, admin: Admin
) -> None:
    """GET /admin/budgets shows spent, reserved, remaining and resets_at as a job runs and ends."""
    status, doc = await admin.call(
        "PUT",
        "/admin/budgets/team-a",
        json={"scope": "team", "subject": "studio-a", "window": "day", "limit_usd": "1.00"},
    )
    assert status == 200
    assert (doc["name"], doc["scope"], doc["subject"], doc["limit_usd"], doc["hard"]) == (
        "team-a",
        "team",
        "studio-a",
        1.0,
        True,
    )
    status, _ = await admin.call(
        "PUT", "/admin/budgets/all", json={"scope": "global", "limit_usd": 500, "hard": False}
    )
    assert status == 200
    headers = {"X-Modellix-Team": "studio-a"}
    async with http.post(f"{stack.proxy_url}{SUBMIT}", json=HAILUO, headers=headers) as resp:
        assert resp.status == 200
        task_id = (await resp.json())["data"]["task_id"]
    now = datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    _, doc = await admin.call("GET", "/admin/budgets")
    budgets = {b["name"]: b for b in doc["budgets"]}
    assert list(budgets) == ["all", "team-a"]
    team = budgets["team-a"]
    assert (team["spent_usd"], team["reserved_usd"], team["remaining_usd"]) == (0, 0.324, 0.676)
    assert team["window_start"] == now.strftime("%Y-%m-%dT00:00:00Z")
    assert team["resets_at"] == tomorrow
    everyone = budgets["all"]
    assert (everyone["hard"], everyone["limit_usd"], everyone["reserved_usd"]) == (
        False,
        500,
        0.324,
    )
    assert everyone["window"] == "month"
    assert everyone["resets_at"][8:] == "01T00:00:00Z"

    await wait_terminal(http, stack.proxy_url, task_id)
    _, doc = await admin.call("GET", "/admin/budgets")
    team = {b["name"]: b for b in doc["budgets"]}["team-a"]
    assert (team["spent_usd"], team["reserved_usd"], team["remaining_usd"]) == (0.324, 0, 0.676)

    assert await admin.call("DELETE", "/admin/budgets/team-a") == (
        200,
        {"name": "team-a", "deleted": True},
    )
    assert (await admin.call("DELETE", "/admin/budgets/team-a"))[0] == 404
    _, doc = await admin.call("GET", "/admin/budgets")
    assert [b["name"] for b in doc["budgets"]] == ["all"]
    # With its budget gone the team is no longer held to $1.
    for i in range(4):
        body = {**HAILUO, "prompt": f"after delete {i}"}
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body, headers=headers) as resp:
            assert resp.status == 200


async def _two_finished_jobs(stack: Stack, http: aiohttp.ClientSession) -> None:
    ids = []
    for team, seconds in (("studio-a", 6), ("studio-b", 10)):
        body = {**HAILUO, "duration": seconds}
        headers = {"X-Modellix-Team": team}
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body, headers=headers) as resp:
            assert resp.status == 200
            ids.append((await resp.json())["data"]["task_id"])
    for task_id in ids:
        await wait_terminal(http, stack.proxy_url, task_id)


async def test_report_csv_and_json_shapes(
    stack: Stack, http: aiohttp.ClientSession, admin: Admin
) -> None:
    """The report's CSV has fixed columns and exact decimals; its JSON carries the same rows."""
    await _two_finished_jobs(stack, http)
    status, kind, text = await admin.text(
        "/admin/report", params={"format": "csv", "group_by": "team,model"}
    )
    assert (status, kind) == (200, "text/csv")
    assert text.splitlines() == [
        ",".join(["team", "model", *COLUMNS]),
        f"studio-a,{SLUG},1,1,0,0.324000,0.324000,0.324000,0.324000,0,0.000000,",
        f"studio-b,{SLUG},1,1,0,0.540000,0.540000,0.540000,0.540000,0,0.000000,",
    ]
    status, doc = await admin.call(
        "GET", "/admin/report", params={"format": "json", "group_by": "team,model"}
    )
    assert status == 200
    assert set(doc) == {"since", "until", "group_by", "rows", "total_spend_usd"}
    assert doc["group_by"] == ["team", "model"]
    assert doc["total_spend_usd"] == "0.864000"
    from_csv = list(csv.DictReader(io.StringIO(text)))
    assert [row["spend_usd"] for row in doc["rows"]] == [row["spend_usd"] for row in from_csv]
    assert doc["rows"][1] == {
        "team": "studio-b",
        "model": SLUG,
        "jobs": 1,
        "succeeded": 1,
        "failed": 0,
        "estimated_usd": "0.540000",
        "spend_usd": "0.540000",
        "cost_per_job_p50_usd": "0.540000",
        "cost_per_job_p95_usd": "0.540000",
        "refused": 0,
        "refused_savings_usd": "0.000000",
        "aliases": None,
    }
    _, doc = await admin.call("GET", "/admin/report")  # default: JSON by day, team, model
    assert doc["group_by"] == ["day", "team", "model"]
    assert {row["day"] for row in doc["rows"]} == {datetime.now(UTC).strftime("%Y-%m-%d")}
    _, doc = await admin.call("GET", "/admin/report", params={"since": 0, "until": 1})
    assert (doc["rows"], doc["total_spend_usd"]) == ([], "0.000000")
    for params in ({"group_by": "team,colour"}, {"group_by": "status"}, {"since": "yesterday"}):
        status, doc = await admin.call("GET", "/admin/report", params=params)
        assert status == 400, params


async def test_refusals_appear_in_the_report(
    stack: Stack, http: aiohttp.ClientSession, admin: Admin
) -> None:
    """Invalid and over-budget submits are counted in `refused`, with the cost they avoided."""
    a = {"X-Modellix-Team": "studio-a"}
    for seconds in (6, 10):  # no prompt: invalid, but its cost can still be estimated
        body = {"duration": seconds, "resolution": "768P"}
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json=body, headers=a) as resp:
            assert resp.status == 400
    async with http.post(f"{stack.proxy_url}/api/v1/acme/no-such-model", json=HAILUO) as resp:
        assert resp.status == 404
    status, _ = await admin.call(
        "PUT",
        "/admin/budgets/team-c",
        json={"scope": "team", "subject": "studio-c", "limit_usd": "0.50"},
    )
    assert status == 200
    c = {"X-Modellix-Team": "studio-c"}
    statuses = []
    for i in range(3):
        paid = {**HAILUO, "prompt": f"budget {i}"}
        async with http.post(f"{stack.proxy_url}{SUBMIT}", json=paid, headers=c) as resp:
            statuses.append(resp.status)
            if resp.status == 200:
                task_id = (await resp.json())["data"]["task_id"]
    assert statuses == [200, 402, 402]
    await wait_terminal(http, stack.proxy_url, task_id)
    _, doc = await admin.call("GET", "/admin/report", params={"group_by": "team,model"})
    rows = {(row["team"], row["model"]): row for row in doc["rows"]}
    picked = {k: (r["jobs"], r["refused"], r["refused_savings_usd"]) for k, r in rows.items()}
    assert picked == {
        ("studio-a", SLUG): (0, 2, "0.864000"),
        ("studio-c", SLUG): (1, 2, "0.648000"),
        (None, None): (0, 1, "0.000000"),  # an unknown slug pins no model: no row of its own
    }
    assert doc["total_spend_usd"] == "0.324000"
    status, _, text = await admin.text(
        "/admin/report", params={"format": "csv", "group_by": "team"}
    )
    assert status == 200
    assert text.splitlines()[1:] == [  # rows sort by group key, no team last
        "studio-a,0,0,0,0.000000,0.000000,,,2,0.864000,",
        "studio-c,1,1,0,0.324000,0.324000,0.324000,0.324000,2,0.648000,",
        ",0,0,0,0.000000,0.000000,,,1,0.000000,",
    ]
