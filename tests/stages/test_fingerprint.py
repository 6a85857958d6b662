"""The canonical input hash: one request, whatever its layout; never a crash."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.context import RequestContext, RouteKind
from proxy.stages.body import BodyLimits, canonical_digest
from proxy.stages.fingerprint import FingerprintStage, canonical_hash


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


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text()
        | st.builds(lambda t, n: t * n, st.text(min_size=1, max_size=3), st.just(40_000)),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=8,
    )
)
def test_sliced_canonical_digest_equals_the_one_shot_hash(value: object) -> None:
    """Hashing the canonical form in slices gives exactly the bytes json.dumps would."""
    ctx = ctx_for(b"")
    ctx.payload = {"v": value}
    assert canonical_digest(b"a/b\n", ctx.payload) == canonical_hash(ctx)


async def test_large_bodies_hash_off_the_loop_to_the_same_value() -> None:
    """Above the off-loop threshold the stage gives the same payload and hash as below it."""
    body = json.dumps({"prompt": "x" * 5000, "n": [1, 2.5, None, "\udc80"]}).encode()
    inline, threaded = ctx_for(body), ctx_for(body)
    await FingerprintStage()(inline)
    await FingerprintStage(BodyLimits(off_loop_bytes=1024))(threaded)
    assert (inline.payload, inline.input_hash) == (threaded.payload, threaded.input_hash)
