"""The canonical input hash: one request, whatever its layout; never a crash."""

from __future__ import annotations

from proxy.context import RequestContext, RouteKind
from proxy.stages.fingerprint import FingerprintStage


def ctx_for(body: bytes) -> RequestContext:
    return RequestContext("r", "c", RouteKind.SUBMIT, 0.0, 0.0, pinned_slug="a/b", body=body)


async def hashed(body: bytes) -> RequestContext:
    ctx = ctx_for(body)
    await FingerprintStage()(ctx)
    return ctx


async def test_layout_does_not_change_the_hash() -> None:
    """Key order and whitespace give the same hash; another value gives another."""
    one = await hashed(b'{"prompt": "x", "duration": 6}')
    two = await hashed(b'{\n "duration":6,"prompt":"x"}')
    three = await hashed(b'{"prompt": "x", "duration": 10}')
    assert one.input_hash == two.input_hash != three.input_hash
    assert one.payload == {"prompt": "x", "duration": 6}


async def test_lone_surrogates_and_malformed_bodies_hash_without_error() -> None:
    """A lone surrogate in a key hashes fine; a body that is not a JSON object is hashed as sent."""
    odd = await hashed(b'{"prompt": "x", "\\udc80": 1}')
    assert odd.input_hash is not None
    broken = await hashed(b'{"prompt": ')
    assert broken.payload is None
    assert broken.input_hash is not None
    listed = await hashed(b"[1, 2]")
    assert listed.payload is None
