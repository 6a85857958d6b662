"""The upstream's model list is part of the catalog: what the proxy shows is what it allows.

Every test drives a real simulator and a real proxy on loopback. The simulator lists
(and serves) video and image families, three of them without a spec in the proxy's
catalog, so the "upstream-listed" path is exercised: exact slug accepted under the
strict policy, only the common fields checked, metrics labelled under the slug.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from proxy.catalog.loader import load_catalog
from proxy.governance.keys import new_key
from proxy.simulator import SimulatorConfig
from proxy.simulator.models import SCHEMAS, UNSPECIFIED
from proxy.telemetry.metrics import PREFIX
from tests.catalog.imagebytes import example_body
from tests.e2e.conftest import KEY, Stack
from tests.e2e.test_governance import put_budget

MakeStack = Callable[..., Awaitable[Stack]]
CATALOG = load_catalog()
WATCHER_KEY = "sk-watcher-key-000111"
UPSTREAM_KEY = "sk-real-upstream-key-0001"
LIST_POINTER = "GET /api/v1/models lists the models you can use"


def rich() -> SimulatorConfig:
    return SimulatorConfig.fast(concurrency_limit=0, initial_balance_usd=Decimal(10_000))


def minimal_body(slug: str) -> dict[str, Any]:
    """A valid body: the catalog's example for a model with a spec, else the upstream's own
    published minimal example (audio models take ``text`` or ``audio_url``, not a prompt)."""
    spec = CATALOG.get(slug)
    if spec is not None:
        return example_body(spec)
    return dict(SCHEMAS[slug].examples["minimal"]["value"])


async def upstream_slugs(stack: Stack, http: aiohttp.ClientSession) -> list[str]:
    """The simulator's own model list, asked directly."""
    async with http.get(f"{stack.sim_url}/api/v1/models") as resp:
        assert resp.status == 200
        return [item["slug"] for item in (await resp.json())["models"]]


async def submit(
    http: aiohttp.ClientSession, stack: Stack, slug: str, body: Any
) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
    async with http.post(f"{stack.proxy_url}/api/v1/{slug}", json=body) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


class CliLikeClient:
    """The official CLI's documented rules for ``model list`` and ``model describe``.

    ``GET {base}/api/v1/models`` with a bearer key; the answer's top-level ``models``
    array; every item must carry a string ``slug``; ``describe`` fetches the whole list
    and matches the slug case-insensitively (``reference/modellix-api.md`` §2.3, §6).
    """

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self._http = http
        self._base = base_url

    async def model_list(self) -> list[dict[str, Any]]:
        async with self._http.get(
            f"{self._base}/api/v1/models", headers={"Authorization": KEY}
        ) as resp:
            assert resp.status == 200, await resp.text()
            document = await resp.json()
        models = document["models"]
        assert isinstance(models, list)
        assert all(isinstance(item.get("slug"), str) for item in models)
        return list(models)

    async def describe(self, slug: str) -> dict[str, Any] | None:
        wanted = slug.strip().casefold()
        return next((m for m in await self.model_list() if m["slug"].casefold() == wanted), None)


async def test_every_listed_model_is_submittable_under_the_strict_policy(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """Each slug the upstream lists, spec or not, is accepted and forwarded as is."""
    stack = await make_stack(rich())
    slugs = await upstream_slugs(stack, http)
    assert {s.slug for s in UNSPECIFIED} <= set(slugs)
    failures: list[str] = []
    for slug in slugs:
        status, doc, headers = await submit(http, stack, slug, minimal_body(slug))
        if status != 200 or headers.get("X-Modellix-Proxy-Model") != slug:
            failures.append(f"{slug}: {status} {doc}")
        elif slug not in CATALOG and "upstream-listed" not in headers.get(
            "X-Modellix-Proxy-Warnings", ""
        ):
            failures.append(f"{slug}: no upstream-listed warning")
    assert failures == []
    assert [r.path for r in stack.sim.requests(method="POST")] == [
        f"/api/v1/{slug}" for slug in slugs
    ]
    assert stack.sim.counters.tasks_created == len(slugs)


async def test_unlisted_slug_is_refused_with_a_one_line_message(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A slug nobody lists gets one short line: a did-you-mean and the list's address."""
    status, doc, _ = await submit(http, stack, "google/nano-banana-2-lit", {"prompt": "x"})
    assert status == 404
    assert doc["message"] == (
        "Model not found: google/nano-banana-2-lit is not served through this proxy "
        f"(did you mean 'google/nano-banana-2-lite'?); {LIST_POINTER}"
    )
    assert "\n" not in doc["message"]
    assert len(doc["message"]) < 200
    assert doc["suggestion"] == "google/nano-banana-2-lite"
    assert "alibaba/qwen-image-plus" in doc["allowed_models"]  # the list stays in a field
    assert stack.sim.requests(method="POST") == []


async def test_cli_model_list_is_exactly_the_submittable_set(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """The CLI's model list through the proxy equals the slugs that submit; disabled ones vanish."""
    disabled = ["kling/kling-v1.6-t2v", "alibaba/qwen-image-plus"]
    stack = await make_stack(rich(), models={"overrides": {"disable": disabled}})
    cli = CliLikeClient(http, stack.proxy_url)
    listed = {item["slug"] for item in await cli.model_list()}
    submittable = set()
    for slug in await upstream_slugs(stack, http):
        status, doc, _ = await submit(http, stack, slug, minimal_body(slug))
        if status == 200:
            submittable.add(slug)
        else:
            assert status == 404, doc
            assert doc["error_type"] == "model_disabled"
    assert listed == submittable
    assert not listed & set(disabled)
    described = await cli.describe("Google/Nano-Banana-2-Lite")
    assert described is not None
    assert described["slug"] == "google/nano-banana-2-lite"
    assert described["type"] == "text-to-image"
    assert described["proxy_validation"] == "catalog"
    unspecified = await cli.describe("google/nano-banana-2")
    assert unspecified is not None
    assert unspecified["proxy_validation"] == "upstream-listed"
    assert await cli.describe("kling/kling-v1.6-t2v") is None


async def test_aliases_are_listed_when_configured(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """With show_aliases, each alias appears once with the slug it is pinned to."""
    stack = await make_stack(models={"upstream_list": {"show_aliases": True}})
    models = await CliLikeClient(http, stack.proxy_url).model_list()
    by_slug = {item["slug"]: item for item in models}
    assert by_slug["minimax/hailuo"]["alias_of"] == "minimax/hailuo-02-t2v"
    assert by_slug["minimax/hailuo"]["type"] == "text-to-video"
    assert len(by_slug) == len(models)


async def test_model_list_of_a_proxy_key_shows_only_its_allowed_models(
    make_stack: MakeStack,
) -> None:
    """A proxy key with an allow-list sees only those models; the upstream sees the real key."""
    config = SimulatorConfig.fast(concurrency_limit=0, api_keys={UPSTREAM_KEY: "default"})
    stack = await make_stack(config, keys={"mode": "virtual"}, upstream={"api_key": UPSTREAM_KEY})
    store = stack.runtime.store
    assert store is not None
    allowed = ("google/nano-banana-2-lite", "minimax/hailuo-02-t2v")
    record, token = new_key(time.time(), team="studio-a", allowed_models=allowed)
    await store.create_virtual_key(record)
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.get(f"{stack.proxy_url}/api/v1/models") as resp,
    ):
        assert resp.status == 200, await resp.text()
        slugs = sorted(item["slug"] for item in (await resp.json())["models"])
    assert slugs == sorted(allowed)
    # The simulator accepts only the upstream key: the 200s prove it was swapped in.
    seen = [r for r in stack.sim.requests(method="GET") if r.path == "/api/v1/models"]
    assert seen
    assert {r.status for r in seen} == {200}


async def test_new_image_models_reach_the_simulator_and_the_ledger(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """nano-banana-2-lite and gpt-image-2 submit through the proxy and are recorded as jobs."""
    store = stack.runtime.store
    assert store is not None
    for slug in ("google/nano-banana-2-lite", "openai/gpt-image-2"):
        status, doc, _ = await submit(http, stack, slug, {"prompt": "a red fox in snow"})
        assert status == 200, doc
        job = await store.get_job(doc["data"]["task_id"])
        assert job is not None
        assert job.pinned_slug == slug
    assert [r.path for r in stack.sim.requests(method="POST")] == [
        "/api/v1/google/nano-banana-2-lite",
        "/api/v1/openai/gpt-image-2",
    ]


async def test_upstream_listed_model_gets_common_checks_and_its_own_metric_label(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Without a spec only common fields are checked; the job is counted under its slug."""
    slug = "alibaba/qwen-image-plus"
    status, doc, _ = await submit(http, stack, slug, {"prompt": 5, "anything": True})
    assert status == 400
    assert doc["errors"] == [
        {
            "field": "prompt",
            "problem": "must be a string, got 5",
            "allowed": "string",
            "rule_status": "upstream-listed",
        }
    ]
    assert stack.sim.requests(method="POST") == []
    status, _, _ = await submit(http, stack, slug, {"prompt": "x", "anything": True})
    assert status == 200
    sample = stack.metrics.registry.get_sample_value(
        f"{PREFIX}_jobs_submitted_total", {"model": slug, "team": "other"}
    )
    assert sample == 1.0


async def test_listed_model_under_a_budget_is_priced_from_the_list(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Under a budget a listed model is priced from the list's display price, not refused."""
    await put_budget(stack, "all", "global", None, "10.00")
    status, _, headers = await submit(http, stack, "google/nano-banana-2-lite", {"prompt": "x"})
    assert status == 200
    assert headers["X-Modellix-Proxy-Price-Source"] == "upstream_list"
    assert headers["X-Modellix-Proxy-Estimated-Cost-USD"] == "0.020000"  # $0.02/img, 1 image
    status, _, headers = await submit(http, stack, "alibaba/qwen-image-plus", {"prompt": "x"})
    assert status == 200
    assert headers["X-Modellix-Proxy-Estimated-Cost-USD"] == "0.030000"


async def test_price_entry_makes_a_listed_model_priced_and_budgeted(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """A price entry for an upstream-listed model without a spec prices it from the body."""
    config = SimulatorConfig.fast(concurrency_limit=0)
    stack = await make_stack(
        config,
        pricing={"models": {"alibaba/qwen-image-plus": {"unit": "per_image", "usd": "0.03"}}},
    )
    await put_budget(stack, "all", "global", None, "10.00")
    status, doc, headers = await submit(
        http, stack, "alibaba/qwen-image-plus", {"prompt": "x", "n": 2}
    )
    assert status == 200, doc
    assert headers["X-Modellix-Proxy-Estimated-Cost-USD"] == "0.060000"
    assert stack.runtime.store is not None
    job = await stack.runtime.store.get_job(doc["data"]["task_id"])
    assert job is not None
    assert job.estimated_cost_micros == 60_000


async def test_watcher_key_fetches_the_list_at_start(make_stack: MakeStack) -> None:
    """With a watcher key the list is fetched at start, before any client asks."""
    config = SimulatorConfig.fast(concurrency_limit=0, api_keys={WATCHER_KEY: "default"})
    stack = await make_stack(
        config,
        upstream={"api_key": WATCHER_KEY},
        models={"upstream_list": {"fetch_at_start": True}},
    )
    listing = stack.runtime.pinner.listing
    async with asyncio.timeout(5):
        await listing.loaded.wait()
    assert "google/nano-banana-2" in listing
    # The simulator accepts only the watcher key: a 200 proves it was the one used.
    fetched = [r for r in stack.sim.requests(method="GET") if r.path == "/api/v1/models"]
    assert [r.status for r in fetched] == [200]
    assert stack.sim.requests(method="POST") == []


async def test_model_list_refused_upstream_is_relayed_unchanged(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """A key the upstream refuses gets the upstream's own answer, byte for byte, not a list."""
    config = SimulatorConfig.fast(concurrency_limit=0, api_keys={UPSTREAM_KEY: "default"})
    stack = await make_stack(config)
    async with (
        http.get(f"{stack.sim_url}/api/v1/models") as direct,
        http.get(f"{stack.proxy_url}/api/v1/models") as proxied,
    ):
        assert direct.status == proxied.status == 401
        assert await direct.read() == await proxied.read()
    assert not stack.runtime.pinner.listing.known
