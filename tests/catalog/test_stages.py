"""Pin and validate stages on a RequestContext, including URL preflight and policies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.catalog.loader import Catalog, CatalogError
from proxy.catalog.media import MediaChecker
from proxy.catalog.pinning import DEFAULT_ALIASES, Pinner
from proxy.catalog.preflight import Preflight, PreflightOptions
from proxy.catalog.validation import BodyValidator
from proxy.context import Caller, RequestContext, RouteKind
from proxy.errors import InvalidInput, MalformedJSON, ModelNotFound
from proxy.stages.pin import PinStage
from proxy.stages.validate import ValidateStage
from tests.catalog.imagebytes import png


def make_ctx(slug: str, body: Any = None, caller: Caller | None = None) -> RequestContext:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RequestContext(
        "r1", "c1", RouteKind.SUBMIT, 0.0, 0.0, requested_slug=slug, body=raw, caller=caller
    )


async def pin(ctx: RequestContext, catalog: Catalog, policy: str = "strict") -> None:
    await PinStage(Pinner(catalog, policy="strict" if policy == "strict" else "permissive"))(ctx)


async def test_alias_resolves_to_pinned_slug(catalog: Catalog) -> None:
    """minimax/hailuo is pinned to hailuo-02-t2v and the alias is recorded."""
    ctx = make_ctx("minimax/hailuo")
    await pin(ctx, catalog)
    assert (ctx.alias, ctx.pinned_slug, ctx.pin_policy_outcome) == (
        "minimax/hailuo",
        "minimax/hailuo-02-t2v",
        "pinned",
    )


async def test_exact_slug_is_direct(catalog: Catalog) -> None:
    """A catalog slug is used as-is."""
    ctx = make_ctx("kling/kling-v2.6-t2v")
    await pin(ctx, catalog)
    assert (ctx.alias, ctx.pinned_slug, ctx.pin_policy_outcome) == (
        None,
        "kling/kling-v2.6-t2v",
        "direct",
    )


async def test_strict_refuses_unknown_with_allowed_list_and_hint(catalog: Catalog) -> None:
    """An unknown slug is a one-line 404 with a did-you-mean; the allowed names are a field."""
    with pytest.raises(ModelNotFound) as info:
        await pin(make_ctx("MiniMax/Hailuo-02-T2V"), catalog)
    err = info.value
    assert err.status == 404
    assert err.instance_reason == "model_not_pinned"
    assert err.message == (
        "Model not found: MiniMax/Hailuo-02-T2V is not served through this proxy "
        "(did you mean 'minimax/hailuo-02-t2v'?); GET /api/v1/models lists the models you can use"
    )
    assert "minimax/hailuo" in err.details["allowed_models"]
    assert err.details["suggestion"] == "minimax/hailuo-02-t2v"


async def test_permissive_forwards_unknown_and_checks_json_only(
    catalog: Catalog, validator: BodyValidator
) -> None:
    """Permissive pinning forwards unknown slugs; validation only requires a JSON object."""
    ctx = make_ctx("acme/brand-new", {"anything": [1, 2]})
    await pin(ctx, catalog, "permissive")
    assert (ctx.pinned_slug, ctx.pin_policy_outcome) == ("acme/brand-new", "permissive")
    await ValidateStage(catalog, validator)(ctx)
    assert ctx.payload == {"anything": [1, 2]}
    with pytest.raises(MalformedJSON):
        await ValidateStage(catalog, validator)(make_ctx("acme/brand-new", b"[1]"))


async def test_caller_allow_list(catalog: Catalog) -> None:
    """A key limited to some models cannot use others, by alias or slug."""
    caller = Caller("vk:1", allowed_models=frozenset({"minimax/hailuo-02-t2v"}))
    ctx = make_ctx("minimax/hailuo", caller=caller)
    await pin(ctx, catalog)
    assert ctx.pinned_slug == "minimax/hailuo-02-t2v"
    with pytest.raises(ModelNotFound) as info:
        await pin(make_ctx("kling/kling", caller=caller), catalog)
    assert info.value.instance_reason == "model_not_allowed"


def test_alias_targets_must_exist(catalog: Catalog) -> None:
    """Aliases to missing slugs, or aliases shadowing real slugs, fail at construction."""
    with pytest.raises(CatalogError):
        Pinner(catalog, {"minimax/hailuo": "minimax/hailuo-99"})
    with pytest.raises(CatalogError):
        Pinner(catalog, {"minimax/hailuo-02-t2v": "minimax/hailuo-2.3-t2v"})
    assert Pinner(catalog).aliases == dict(DEFAULT_ALIASES)


async def test_valid_body_passes_unchanged(catalog: Catalog, validator: BodyValidator) -> None:
    """A valid body sets payload and leaves the forwarded bytes untouched."""
    raw = b'{"prompt":  "a fox",\n "duration": 6}'
    ctx = make_ctx("minimax/hailuo-2.3-t2v", raw)
    await pin(ctx, catalog)
    await ValidateStage(catalog, validator)(ctx)
    assert ctx.body == raw
    assert ctx.payload == {"prompt": "a fox", "duration": 6}


async def test_invalid_body_lists_every_problem(catalog: Catalog, validator: BodyValidator) -> None:
    """The stage raises one InvalidInput carrying all problems."""
    ctx = make_ctx("minimax/hailuo", {"duration": 10, "resolution": "1080P", "extra": True})
    await pin(ctx, catalog)
    with pytest.raises(InvalidInput) as info:
        await ValidateStage(catalog, validator)(ctx)
    assert sorted(e["field"] for e in info.value.details["errors"]) == [
        "extra",
        "prompt",
        "resolution",
    ]
    assert info.value.message.startswith("Missing required parameter:")


@pytest.fixture
async def image_base(aiohttp_server: AiohttpServer) -> str:
    async def good(request: web.Request) -> web.Response:
        return web.Response(body=png(1280, 720), content_type="image/png")

    app = web.Application()
    app.router.add_get("/good.png", good)
    server = await aiohttp_server(app, host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}"


@pytest.mark.parametrize("mode", ["refuse", "warn"])
async def test_url_preflight_in_the_stage(
    catalog: Catalog, validator: BodyValidator, image_base: str, mode: str
) -> None:
    """Reachable URLs pass; unreachable ones refuse (or warn), checked concurrently."""
    checker = Preflight(PreflightOptions(allow=["127.0.0.1/32"]))
    media = MediaChecker(checker, mode="refuse" if mode == "refuse" else "warn")
    stage = ValidateStage(catalog, validator, media)
    try:
        body = {
            "prompt": "x",
            "first_frame_image": image_base + "/good.png",
            "last_frame_image": image_base + "/gone.png",
        }
        ctx = make_ctx("bytedance/seedance-2.0-i2v", body)
        if mode == "refuse":
            with pytest.raises(InvalidInput) as info:
                await stage(ctx)
            assert info.value.instance_reason == "media_unreachable"
            assert [e["field"] for e in info.value.details["errors"]] == ["last_frame_image"]
        else:
            await stage(ctx)
            assert any("last_frame_image" in w for w in ctx.warnings)
        forbidden = make_ctx(
            "bytedance/seedance-2.0-i2v",
            {"prompt": "x", "first_frame_image": "http://10.0.0.1/a.png"},
        )
        with pytest.raises(InvalidInput) as info:
            await stage(forbidden)
        assert info.value.instance_reason == "forbidden_address"
    finally:
        await checker.close()
