"""Model pinning through the running proxy: aliases forward the pinned slug, strangers stop.

Strict policy (the default): an alias is rewritten to its pinned slug before the upstream
sees it, an exact catalog (or upstream-listed) slug passes as is, anything else is a
one-line 404 pointing at the model list.
Permissive policy: an unknown slug is forwarded as is (after the JSON-object check).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from proxy.catalog.loader import load_catalog
from proxy.catalog.pinning import DEFAULT_ALIASES
from proxy.simulator.listing import model_list
from tests.e2e.conftest import Stack

MakeStack = Callable[..., Awaitable[Stack]]
HAILUO = {"prompt": "a red fox running through snow", "duration": 6, "resolution": "768P"}
CATALOG = load_catalog()


async def post(
    http: aiohttp.ClientSession, stack: Stack, path: str, body: Any = HAILUO
) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
    async with http.post(f"{stack.proxy_url}{path}", json=body) as resp:
        doc: dict[str, Any] = await resp.json(content_type=None)
        return resp.status, doc, resp.headers


async def test_unknown_slug_is_a_one_line_404_with_the_allowed_names_in_a_field(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Strict policy: an unknown slug gets a one-line 404; slugs and aliases are in a field."""
    status, doc, _ = await post(http, stack, "/api/v1/acme/video-9000")
    assert status == 404
    assert doc["code"] == 404
    assert doc["message"] == (
        "Model not found: acme/video-9000 is not served through this proxy; "
        "GET /api/v1/models lists the models you can use"
    )
    listed = {m["slug"] for m in model_list()}
    allowed = sorted({*CATALOG.slugs(), *listed, *DEFAULT_ALIASES})
    assert doc["allowed_models"] == allowed
    assert doc["error_type"] == "model_not_pinned"
    assert stack.sim.requests(method="POST") == []


async def test_near_miss_slug_gets_a_did_you_mean_hint(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A slug that differs only in case is refused with the exact spelling suggested."""
    status, doc, _ = await post(http, stack, "/api/v1/MiniMax/Hailuo-02-T2V")
    assert status == 404
    assert "(did you mean 'minimax/hailuo-02-t2v'?)" in doc["message"]
    assert stack.sim.requests(method="POST") == []


@pytest.mark.parametrize(
    ("path", "forwarded"),
    [
        ("/api/v1/minimax/hailuo", "/api/v1/minimax/hailuo-02-t2v"),
        ("/api/v1/minimax/hailuo/async", "/api/v1/minimax/hailuo-02-t2v/async"),
        (
            "/api/v1/text-to-video/minimax/hailuo/async",
            "/api/v1/text-to-video/minimax/hailuo-02-t2v/async",
        ),
    ],
)
async def test_alias_is_forwarded_as_the_pinned_slug(
    path: str, forwarded: str, stack: Stack, http: aiohttp.ClientSession
) -> None:
    """An alias reaches the upstream as its pinned slug, in the client's path form, with headers."""
    status, doc, headers = await post(http, stack, path)
    assert status == 200, doc
    assert headers["X-Modellix-Proxy-Model"] == "minimax/hailuo-02-t2v"
    assert headers["X-Modellix-Proxy-Alias"] == "minimax/hailuo"
    assert [r.path for r in stack.sim.requests(method="POST")] == [forwarded]


async def test_every_default_alias_pins_to_its_slug(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Each shipped alias is validated against, and forwarded as, the slug it is pinned to."""
    for alias, slug in DEFAULT_ALIASES.items():
        spec = CATALOG.get(slug)
        assert spec is not None
        status, doc, _ = await post(http, stack, f"/api/v1/{alias}", {"durration": 1})
        assert status == 400, (alias, doc)
        unknown = [e for e in doc["errors"] if e["field"] == "durration"]
        assert unknown[0]["allowed"] == sorted(spec.properties), alias  # the pinned schema
    assert stack.sim.counters.total_requests == 0


async def test_exact_slug_passes_without_an_alias_header(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """A catalog slug is forwarded unchanged and marked with the model header only."""
    status, _, headers = await post(http, stack, "/api/v1/minimax/hailuo-02-t2v")
    assert status == 200
    assert headers["X-Modellix-Proxy-Model"] == "minimax/hailuo-02-t2v"
    assert "X-Modellix-Proxy-Alias" not in headers


async def test_operator_aliases_replace_the_defaults(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """Configured aliases pin where the operator says; the shipped ones then no longer exist."""
    stack = await make_stack(models={"aliases": {"acme/video": "minimax/hailuo-2.3-t2v"}})
    status, _, headers = await post(http, stack, "/api/v1/acme/video")
    assert status == 200
    assert headers["X-Modellix-Proxy-Model"] == "minimax/hailuo-2.3-t2v"
    assert headers["X-Modellix-Proxy-Alias"] == "acme/video"
    status, doc, _ = await post(http, stack, "/api/v1/minimax/hailuo")
    assert status == 404
    listed = {m["slug"] for m in model_list()}
    assert doc["allowed_models"] == sorted({*CATALOG.slugs(), *listed, "acme/video"})
    assert [r.path for r in stack.sim.requests(method="POST")] == ["/api/v1/minimax/hailuo-2.3-t2v"]


async def test_permissive_policy_forwards_an_unknown_slug_as_is(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """Permissive policy: an unknown slug reaches the upstream unchanged (which 404s it)."""
    stack = await make_stack(models={"policy": "permissive"})
    status, doc, headers = await post(http, stack, "/api/v1/acme/video-9000", {"anything": 1})
    assert status == 404  # the upstream's own answer
    assert doc["message"] == "Model not found: acme/video-9000"
    assert headers["X-Modellix-Proxy-Model"] == "acme/video-9000"
    assert [r.path for r in stack.sim.requests(method="POST")] == ["/api/v1/acme/video-9000"]


async def test_permissive_policy_still_checks_catalog_models_and_json(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """Permissive pinning does not relax validation: known models and non-objects are refused."""
    stack = await make_stack(models={"policy": "permissive"})
    status, _, _ = await post(http, stack, "/api/v1/minimax/hailuo-02-t2v", {"prompt": 1})
    assert status == 400
    status, doc, _ = await post(http, stack, "/api/v1/acme/video-9000", [1, 2])
    assert status == 400
    assert doc["message"] == "Invalid format: request body must be a JSON object, got list"
    assert stack.sim.requests(method="POST") == []
