"""The upstream's model list as part of the catalog: parsing, caching, pinning, what is shown."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.catalog.listed import common_problems
from proxy.catalog.loader import Catalog, load_catalog
from proxy.catalog.pinning import Pinner
from proxy.catalog.upstream_models import (
    ListUnavailable,
    UpstreamModels,
    parse_models,
    valid_slug,
)
from proxy.config import UpstreamListSettings
from proxy.errors import ModelNotFound
from proxy.handlers.models import visible_models

DOCUMENT = {
    "models": [
        {"slug": "google/nano-banana-2", "type": "text-to-image", "docs_url": "d"},
        {"slug": "minimax/hailuo-02-t2v", "type": "text-to-video"},
        {"slug": "kling/kling-v1.6-t2v", "type": "text-to-video"},
        {"slug": "acme/disabled-one", "type": "text-to-image"},
    ]
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingUpstream:
    """A list source with real behaviour: answers a document or fails, and counts calls."""

    def __init__(self, document: Any) -> None:
        self.document = document
        self.calls: list[str] = []
        self.failing = False

    async def __call__(self, authorization: str) -> Any:
        self.calls.append(authorization)
        if self.failing:
            raise ListUnavailable("the upstream answered 503")
        return self.document


def listing(source: CountingUpstream, clock: Clock, fallback: str | None = None) -> UpstreamModels:
    settings = UpstreamListSettings(refresh_seconds=60, retry_seconds=10, max_models=50)
    models = UpstreamModels(settings, clock=clock)
    models.connect(source, fallback)
    return models


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog({"disable": ["kling/kling-v1.6-t2v", "acme/disabled-one"]})


@pytest.mark.parametrize(
    ("slug", "ok"),
    [
        ("google/nano-banana-2", True),
        ("google", False),
        ("a/b/c", False),
        ("/b", False),
        (" google/x", False),
        ("google/x\u202e", False),
        ("p/" + "m" * 300, False),
        (5, False),
    ],
)
def test_slug_rules_follow_the_official_cli(slug: object, ok: bool) -> None:
    """Two non-empty segments, no surrounding space or control characters, at most 256 chars."""
    assert valid_slug(slug) is ok


def test_parse_skips_bad_items_and_cuts_at_the_limit() -> None:
    """Items without a valid slug and duplicates are dropped; the list is bounded."""
    document = {"models": [{"slug": "a/b"}, {"slug": 1}, "x", {"slug": "a/b"}, {"slug": "c/d"}]}
    assert [m["slug"] for m in parse_models(document, 10)] == ["a/b", "c/d"]
    assert [m["slug"] for m in parse_models(document, 1)] == ["a/b"]
    with pytest.raises(ListUnavailable):
        parse_models({"data": {"models": []}}, 10)


async def test_list_is_fetched_once_while_fresh_and_again_when_stale() -> None:
    """The caller's key fetches the list on first need; a fresh list is reused."""
    source, clock = CountingUpstream(DOCUMENT), Clock()
    models = listing(source, clock)
    assert await models.ensure("Bearer caller") is True
    assert await models.ensure("Bearer other") is True
    assert source.calls == ["Bearer caller"]
    clock.now += 61
    await models.ensure("Bearer other")
    assert source.calls == ["Bearer caller", "Bearer other"]
    assert "google/nano-banana-2" in models


async def test_watcher_key_is_preferred_and_failures_back_off() -> None:
    """The configured key is used; a failed fetch keeps the old list and is not retried at once."""
    source, clock = CountingUpstream(DOCUMENT), Clock()
    models = listing(source, clock, fallback="Bearer watcher")
    await models.ensure("Bearer caller")
    assert source.calls == ["Bearer watcher"]
    source.failing = True
    clock.now += 61
    assert await models.ensure(None) is True  # the last good list is kept
    assert "google/nano-banana-2" in models
    await models.ensure(None)
    assert len(source.calls) == 2  # backing off
    clock.now += 11
    await models.ensure(None)
    assert len(source.calls) == 3


async def test_pinner_accepts_listed_slugs_and_refuses_disabled_ones(catalog: Catalog) -> None:
    """Listed slugs pin as themselves; a disabled slug stays refused even when listed."""
    source, clock = CountingUpstream(DOCUMENT), Clock()
    models = listing(source, clock)
    pinner = Pinner(catalog, listing=models)
    assert pinner.needs_listing("google/nano-banana-2")
    await models.ensure("Bearer caller")
    assert not pinner.needs_listing("google/nano-banana-2")
    result = pinner.resolve("google/nano-banana-2")
    assert (result.pinned, result.outcome) == ("google/nano-banana-2", "upstream-listed")
    assert pinner.resolve("minimax/hailuo-02-t2v").outcome == "direct"
    for slug in ("kling/kling-v1.6-t2v", "acme/disabled-one"):
        with pytest.raises(ModelNotFound) as info:
            pinner.resolve(slug)
        assert info.value.instance_reason == "model_disabled"
        assert slug not in pinner.submittable_slugs()


async def test_each_account_pins_against_its_own_list(catalog: Catalog) -> None:
    """An account's list is made on first lookup, fetched once with its own key, and decides
    that account's slugs only; a keyless lookup finds any account's; disabled stays refused."""
    shared_source, clock = CountingUpstream({"models": []}), Clock()
    pinner = Pinner(catalog, listing=listing(shared_source, clock))
    source = CountingUpstream(DOCUMENT)
    pinner.lists.connect(source, {"house": "Bearer k-house", "early": "Bearer k-early"}, "house")
    assert pinner.lists.of("house") is pinner.listing is pinner.lists.of(None)
    early = pinner.lists.of("early")
    assert early is not pinner.listing
    assert pinner.lists.of("early") is early  # made once, then a dict lookup
    assert pinner.lists.of("nobody") is pinner.listing  # no key here: the shared list
    assert pinner.needs_listing("google/nano-banana-2", "early")
    await early.ensure(None)
    await early.ensure(None)  # fresh: no second fetch
    assert source.calls == ["Bearer k-early"]
    assert pinner.resolve("google/nano-banana-2", None, "early").outcome == "upstream-listed"
    with pytest.raises(ModelNotFound) as info:
        pinner.resolve("google/nano-banana-2", None, "house")
    assert info.value.instance_reason == "model_not_pinned"
    assert "google/nano-banana-2" in pinner.every_submittable_slug()
    assert "google/nano-banana-2" not in pinner.submittable_slugs("house")
    assert pinner.resolve_for_anyone("google/nano-banana-2").pinned == "google/nano-banana-2"
    with pytest.raises(ModelNotFound):
        pinner.resolve_for_anyone("acme/disabled-one")
    assert "google/nano-banana-2" in pinner.lists  # labelled under its slug


def test_refusal_is_one_line_with_a_near_match(catalog: Catalog) -> None:
    """A typo gets the closest allowed name; an unrelated slug gets no guess."""
    pinner = Pinner(catalog)
    with pytest.raises(ModelNotFound) as info:
        pinner.resolve("minimax/hailuo-02-t2")
    assert "(did you mean 'minimax/hailuo-02-t2v'?)" in info.value.message
    with pytest.raises(ModelNotFound) as info:
        pinner.resolve("zzz/qqq")
    assert "did you mean" not in info.value.message
    assert "\n" not in info.value.message
    assert info.value.message.endswith("GET /api/v1/models lists the models you can use")


async def test_visible_models_are_the_submittable_ones(catalog: Catalog) -> None:
    """Shown: listed and submittable; catalog-only and disabled models never."""
    source, clock = CountingUpstream(DOCUMENT), Clock()
    models = listing(source, clock)
    await models.ensure("Bearer caller")
    pinner = Pinner(catalog, listing=models)
    items = parse_models(DOCUMENT, 50)
    shown = visible_models(pinner, catalog, items, complete=True)
    assert [m["slug"] for m in shown] == ["google/nano-banana-2", "minimax/hailuo-02-t2v"]
    assert len(pinner.submittable_slugs()) > len(shown)  # the catalog's others stay unlisted
    first = shown[0]
    assert first == {**DOCUMENT["models"][0], "proxy_validation": "upstream-listed"}
    partial = visible_models(pinner, catalog, items, complete=False)
    assert [m["slug"] for m in partial] == ["google/nano-banana-2", "minimax/hailuo-02-t2v"]
    allowed = visible_models(
        pinner, catalog, items, complete=True, allowed={"google/nano-banana-2"}
    )
    assert [m["slug"] for m in allowed] == ["google/nano-banana-2"]


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"prompt": "x", "anything": [1, 2]}, []),
        ({"prompt": 5}, ["prompt"]),
        ({"prompt": ""}, ["prompt"]),
        ({"negative_prompt": None, "seed": "7"}, ["negative_prompt", "seed"]),
        ({"seed": True}, ["seed"]),
        ({"seed": -1}, []),
    ],
)
def test_common_fields_are_checked_where_present(
    payload: dict[str, Any], fields: list[str]
) -> None:
    """Without a spec, only prompt/negative_prompt (strings) and seed (integer) are checked."""
    problems = common_problems(payload)
    assert [p.field for p in problems] == fields
    assert all(p.status == "upstream-listed" for p in problems)
