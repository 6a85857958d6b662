"""A viewer's and a finance token's out-of-role changes under other spellings of the admin
path (doubled or trailing slashes, escaped letters, dot segments, case, ``;`` parameters),
other methods (OPTIONS, PATCH, unknown) and method-override headers: each refused with 4xx
(HEAD is a read where a GET route matches), and nothing changes (no budget, key or token,
no audit row)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from harness.config import settings_for
from proxy.admin import create_admin_app
from proxy.telemetry.metrics import Metrics
from tests.e2e.conftest import Stack

ServerFactory = Callable[..., Awaitable[TestServer]]
CONFIG_TOKEN = "spellings-config-operator-token"
OVERRIDES: tuple[dict[str, str], ...] = (
    {},
    {"X-HTTP-Method-Override": "GET"},
    {"X-HTTP-Method": "GET"},
)


def spellings(path: str) -> list[str]:
    """``path`` (``/admin/<first>/...``) as clients and attackers may also write it."""
    first = path.removeprefix("/admin/").split("/", 1)[0]
    escaped = path.replace(f"/{first}", f"/%{ord(first[0]):02x}{first[1:]}", 1)
    return [
        path, path + "/", path.replace("/admin/", "/admin//"), "/" + path, escaped,
        path.replace("/admin/", "/%61dmin/"), path.replace("/admin/", "/admin/./"),
        path.replace("/admin/", "/admin/x/../"), path.replace("/admin/", "/admin/%2e/"),
        path.replace("/admin/", "/ADMIN/"), path.replace(first, first.upper(), 1),
        path + ";x=1", path + "?method=GET", path.replace("/admin/", "/admin%2f"),
    ]  # fmt: skip


@pytest.fixture
async def base(make_stack: Callable[..., Awaitable[Stack]], aiohttp_server: ServerFactory) -> str:
    stack = await make_stack()
    settings = settings_for(stack.sim_url, admin={"enabled": True, "token": CONFIG_TOKEN})
    server = await aiohttp_server(create_admin_app(settings, Metrics(), stack.runtime))
    return str(server.make_url("")).rstrip("/")


async def test_out_of_role_changes_stay_refused_however_spelled(base: str) -> None:
    """Viewer: budgets, keys, tokens; finance: keys and tokens. Every spelling, method and
    override header is 4xx, and the budgets, keys, tokens and audit trail are as before."""
    async with aiohttp.ClientSession() as http:

        async def state() -> list[object]:
            seen: list[object] = []
            for path in ("/admin/budgets", "/admin/keys", "/admin/tokens", "/admin/audit"):
                async with http.get(
                    base + path, headers={"Authorization": f"Bearer {CONFIG_TOKEN}"}
                ) as resp:
                    seen.append(await resp.json())
            return seen

        tokens = {}
        for role in ("viewer", "finance"):
            async with http.post(
                base + "/admin/tokens",
                json={"name": f"spell-{role}", "role": role},
                headers={"Authorization": f"Bearer {CONFIG_TOKEN}"},
            ) as resp:
                tokens[role] = (await resp.json())["token"]
        before = await state()
        budget = {"scope": "team", "subject": "t", "window": "day", "limit_usd": 1}
        attempts = [
            ("viewer", "PUT", "/admin/budgets/b1", budget),
            ("viewer", "DELETE", "/admin/budgets/b1", None),
            ("viewer", "POST", "/admin/keys", {"name": "k"}),
            ("finance", "POST", "/admin/keys", {"name": "k"}),
            ("finance", "POST", "/admin/tokens", {"name": "x", "role": "operator"}),
        ]
        statuses = set()
        for who, method, path, body in attempts:
            for spelled in spellings(path):
                for verb in (method, "HEAD", "OPTIONS", "PATCH", "FROB"):
                    for extra in OVERRIDES:
                        headers = {"Authorization": f"Bearer {tokens[who]}", **extra}
                        data = None if body is None else json.dumps(body).encode()
                        url = URL(base + spelled, encoded=True)
                        async with http.request(verb, url, data=data, headers=headers) as resp:
                            await resp.read()
                        if verb == "HEAD":  # a read where a GET route matches: state checks
                            continue
                        assert 400 <= resp.status < 500, (who, verb, spelled, extra, resp.status)
                        statuses.add(resp.status)
        assert await state() == before
        assert 403 in statuses  # the plain spellings reached the role check
