"""Contract tests of the published-schema pins, run against every backend."""

from __future__ import annotations

from proxy.stores import Store

SLUG = "vidu/vidu-q3-t2v"


async def test_first_version_pins_and_a_change_waits_under_hold(store: Store) -> None:
    """First sight pins; a new version is recorded as latest and counted, not pinned."""
    first = await store.record_schema(SLUG, "h1", '{"a":1}', 10.0, follow=False)
    assert (first.pinned_hash, first.latest_hash, first.changes) == ("h1", "h1", 0)
    again = await store.record_schema(SLUG, "h1", '{"a":1}', 20.0, follow=False)
    assert (again.checked_at, again.changes, again.waiting) == (20.0, 0, False)
    changed = await store.record_schema(SLUG, "h2", '{"a":2}', 30.0, follow=False)
    assert (changed.pinned_hash, changed.latest_hash, changed.changes) == ("h1", "h2", 1)
    assert changed.waiting
    assert await store.schema_document(SLUG, "h2") == '{"a":2}'
    assert [v.hash for v in await store.schema_versions(SLUG)] == ["h1", "h2"]


async def test_accept_pins_the_latest_or_a_named_version(store: Store) -> None:
    await store.record_schema(SLUG, "h1", "{}", 10.0, follow=False)
    await store.record_schema(SLUG, "h2", "{}", 20.0, follow=False)
    accepted = await store.accept_schema(SLUG, None, 30.0)
    assert accepted is not None
    assert (accepted.pinned_hash, accepted.pinned_at, accepted.waiting) == ("h2", 30.0, False)
    back = await store.accept_schema(SLUG, "h1", 40.0)
    assert back is not None
    assert back.pinned_hash == "h1"
    assert back.waiting  # the origin still serves h2
    assert await store.accept_schema(SLUG, "nope", 50.0) is None
    assert await store.accept_schema("acme/none", None, 50.0) is None
    assert [p.slug for p in await store.schema_pins()] == [SLUG]


async def test_follow_pins_every_change(store: Store) -> None:
    await store.record_schema(SLUG, "h1", "{}", 10.0, follow=True)
    pin = await store.record_schema(SLUG, "h2", "{}", 20.0, follow=True)
    assert (pin.pinned_hash, pin.latest_hash, pin.changes, pin.waiting) == ("h2", "h2", 1, False)
