"""Each Modellix account's own model list decides what its teams may submit, and at what
list price.

The simulator lists different models to two upstream teams (one model only to the
second) and shows one shared model at a different display price to each. The proxy
(a real process on SQLite) maps a proxy team to each account; the first account's list is
the one pass-through callers share. A submit of the second account's own model must go
through for its team and be refused for the other team before anything reaches the
upstream; each team's estimate must come from its own account's list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.processes import ProxyProcess, start_proxy
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.simulator.models import SCHEMAS
from proxy.stores import open_store
from tests.e2e.admission_support import virtual_key

ServerFactory = Callable[..., Awaitable[TestServer]]
KEYS = {"house": "sk-account-house-0001", "early": "sk-account-early-0002"}
SIM_TEAMS = {"house": "mlx-team-house", "early": "mlx-team-early"}
PROXY_TEAM = {"house": "red", "early": "blue"}
ONLY_EARLY = "google/nano-banana-2"  # listed ($0.039 per image) to the early account only
SHARED = "alibaba/qwen-image-plus"  # listed to both: $0.03 per image, $0.05 to early
LIST_PRICE = {"house": Decimal("0.03"), "early": Decimal("0.05")}


def _simulator() -> Simulator:
    return Simulator(
        SimulatorConfig.fast(
            concurrency_limit=0,
            api_keys={KEYS[n]: SIM_TEAMS[n] for n in KEYS},
            teams={
                SIM_TEAMS["house"]: {"models": [SHARED, "minimax/hailuo-02-t2v"]},
                SIM_TEAMS["early"]: {
                    "models": [SHARED, ONLY_EARLY],
                    "listed_prices": {SHARED: LIST_PRICE["early"]},
                },
            },
        )
    )


def _env(sim_url: str, store_url: str) -> dict[str, str]:
    accounts = ", ".join(
        f"{name}: {{api_key: {KEYS[name]}, teams: [{PROXY_TEAM[name]}]}}" for name in KEYS
    )
    env = proxy_env(
        sim_url,
        store_url,
        MODELLIX_PROXY_UPSTREAM__ACCOUNTS=f"{{{accounts}}}",
        MODELLIX_PROXY_KEYS__MODE="virtual",
        MODELLIX_PROXY_KEYS__CACHE_SECONDS="0.1",
    )
    del env["MODELLIX_PROXY_UPSTREAM__API_KEY"]  # the first account's list is the shared one
    return env


def _body(slug: str) -> dict[str, Any]:
    return dict(SCHEMAS[slug].examples["minimal"]["value"])


async def _submit(
    http: aiohttp.ClientSession, proc: ProxyProcess, token: str, slug: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{proc.url}/api/v1/{slug}", json=_body(slug), headers=headers) as r:
        return r.status, await r.json(content_type=None), dict(r.headers)


async def _listed(http: aiohttp.ClientSession, proc: ProxyProcess, token: str) -> set[str]:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{proc.url}/api/v1/models", headers=headers) as r:
        assert r.status == 200, await r.text()
        return {item["slug"] for item in (await r.json())["models"]}


def _list_fetches(sim: Simulator) -> int:
    return len(sim.requests(route="models"))


async def test_each_account_submits_and_prices_against_its_own_model_list(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """The early account's own model runs for its team only (the other team's submit is
    refused in the envelope, never sent), each team is list-priced from its account's
    list, and the lists cost one fetch per account, not one per submit."""
    sim = _simulator()
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    store_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    proc = await start_proxy(_env(sim_url, store_url), tmp_path / "proxy.log")
    try:
        store = await open_store(store_url)
        try:
            tokens = {n: (await virtual_key(store, team=t))[1] for n, t in PROXY_TEAM.items()}
        finally:
            await store.close()
        await sim.wait_until(lambda: _list_fetches(sim) >= 1)  # the shared list, at start
        async with aiohttp.ClientSession() as http:
            early = [await _submit(http, proc, tokens["early"], ONLY_EARLY) for _ in range(3)]
            refused = await _submit(http, proc, tokens["house"], ONLY_EARLY)
            shared = {n: await _submit(http, proc, tokens[n], SHARED) for n in KEYS}
            fetches = _list_fetches(sim)
            views = {n: await _listed(http, proc, tokens[n]) for n in KEYS}
    finally:
        await proc.kill()

    for status, doc, headers in early:
        assert status == 200, doc
        assert headers["X-Modellix-Proxy-Model"] == ONLY_EARLY
        assert headers["X-Modellix-Proxy-Price-Source"] == "upstream_list"
        assert Decimal(headers["X-Modellix-Proxy-Estimated-Cost-USD"]) == Decimal("0.039")
    status, doc, _ = refused
    assert status == 404
    assert set(doc) >= {"code", "message"}
    assert doc["code"] == 404
    assert doc["message"].startswith(f"Model not found: {ONLY_EARLY} is not served")
    submitted = [r.path for r in sim.requests(method="POST")]
    assert submitted.count(f"/api/v1/{ONLY_EARLY}") == 3  # the early team's, none of red's
    for name, (status, doc, headers) in shared.items():
        assert status == 200, (name, doc)
        assert headers["X-Modellix-Proxy-Price-Source"] == "upstream_list"
        assert Decimal(headers["X-Modellix-Proxy-Estimated-Cost-USD"]) == LIST_PRICE[name]
    assert fetches == 2  # the shared list at start, the early account's on its first submit
    assert ONLY_EARLY in views["early"]
    assert ONLY_EARLY not in views["house"]
    assert SHARED in views["house"] & views["early"]


async def test_a_pass_through_callers_list_leaves_the_accounts_list_as_it_is(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """A caller with its own Modellix key (mixed mode) asking for the model list does not
    replace the shared list the first account's teams submit against: it is shown what it
    may submit through the proxy (its key's models the shared list also has), and the other
    team's submit of a model only the caller's key lists is still refused, never sent."""
    sim = _simulator()
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    store_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = _env(sim_url, store_url)
    env["MODELLIX_PROXY_KEYS__MODE"] = "mixed"
    proc = await start_proxy(env, tmp_path / "proxy.log")
    try:
        store = await open_store(store_url)
        try:
            house = (await virtual_key(store, team=PROXY_TEAM["house"]))[1]
        finally:
            await store.close()
        await sim.wait_until(lambda: _list_fetches(sim) >= 1)  # the shared list, at start
        async with aiohttp.ClientSession() as http:
            own = await _listed(http, proc, KEYS["early"])  # its own key, passed through
            status, doc, _ = await _submit(http, proc, house, ONLY_EARLY)
    finally:
        await proc.kill()

    assert own == {SHARED}
    assert status == 404, doc
    assert doc["message"].startswith(f"Model not found: {ONLY_EARLY} is not served")
    submitted = [r.path for r in sim.requests(method="POST")]
    assert f"/api/v1/{ONLY_EARLY}" not in submitted
