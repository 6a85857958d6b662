"""Building both stages from one config section."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from proxy.catalog.factory import build_stages
from proxy.catalog.loader import CatalogError
from proxy.context import RequestContext, RouteKind
from proxy.errors import InvalidInput


async def test_build_from_plain_mapping() -> None:
    """A plain config mapping yields working stages with extra aliases and policies."""
    stages = build_stages(
        {
            "extra_aliases": {"acme/video": "minimax/hailuo-2.3-t2v"},
            "unknown_fields": "warn",
            "preflight": {"enabled": False},
        }
    )
    try:
        ctx = RequestContext(
            "r",
            "c",
            RouteKind.SUBMIT,
            0.0,
            0.0,
            requested_slug="acme/video",
            body=b'{"prompt":"x","z":1}',
        )
        await stages.pin(ctx)
        await stages.validate(ctx)
        assert (ctx.alias, ctx.pinned_slug) == ("acme/video", "minimax/hailuo-2.3-t2v")
        assert ctx.warnings == ["unknown parameter 'z' forwarded unchecked"]
        ctx.body = b'{"prompt":"x","duration":10,"resolution":"1080P"}'
        with pytest.raises(InvalidInput):
            await stages.validate(ctx)
    finally:
        await stages.close()


def test_bad_config_fails_at_start_up() -> None:
    """Typos in the config and aliases to unknown slugs are start-up errors."""
    with pytest.raises(ValidationError):
        build_stages({"pin_polcy": "strict"})
    with pytest.raises(CatalogError):
        build_stages(
            {"extra_aliases": {"acme/video": "acme/nothing"}, "preflight": {"enabled": False}}
        )
