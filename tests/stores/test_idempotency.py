"""Contract tests of idempotency keys, run against every backend."""

from __future__ import annotations

import asyncio
from collections import Counter

from proxy.stores import Store
from proxy.stores.records import ClaimOutcome, Intent, StoredResponse
from tests.stores.helpers import T0, new_job

SCOPE = "vk:team-a"
TTL = 24 * 3600.0
TIMEOUT = 300.0


async def test_first_claim_is_new_and_second_is_in_flight(store: Store) -> None:
    """The first claim of a key owns it; a repeat while it runs is told it is in flight."""
    assert (await store.claim(SCOPE, "k1", "fp-a", T0)).outcome is ClaimOutcome.NEW
    assert (await store.claim(SCOPE, "k1", "fp-a", T0 + 1)).outcome is ClaimOutcome.IN_FLIGHT


async def test_same_key_different_request_is_mismatch(store: Store) -> None:
    """Reusing a key with a different request fingerprint is a mismatch, in any state."""
    await store.claim(SCOPE, "k1", "fp-a", T0)
    assert (await store.claim(SCOPE, "k1", "fp-b", T0 + 1)).outcome is ClaimOutcome.MISMATCH
    await store.complete(SCOPE, "k1", StoredResponse(status=200, body=b"{}"))
    assert (await store.claim(SCOPE, "k1", "fp-b", T0 + 2)).outcome is ClaimOutcome.MISMATCH


async def test_completed_key_replays_stored_response(store: Store) -> None:
    """After complete, a repeat gets the stored status, headers, body bytes and task id."""
    await store.claim(SCOPE, "k1", "fp-a", T0)
    response = StoredResponse(
        status=201,
        headers={"Content-Type": "application/json", "X-Note": "ünïcode"},
        body=b'{"task_id": "a/b"}\x00\xff',
        task_id="a/b",
    )
    assert await store.complete(SCOPE, "k1", response)
    claim = await store.claim(SCOPE, "k1", "fp-a", T0 + 5)
    assert claim.outcome is ClaimOutcome.REPLAY
    assert claim.response == response
    assert claim.task_id == "a/b"
    assert not await store.complete(SCOPE, "k1", StoredResponse(status=500))


async def test_unknown_outcome_is_reported(store: Store) -> None:
    """A key marked unknown (request sent, no answer) is reported UNKNOWN, never NEW."""
    await store.claim(SCOPE, "k1", "fp-a", T0)
    assert await store.mark_unknown(SCOPE, "k1")
    assert (await store.claim(SCOPE, "k1", "fp-a", T0 + 1)).outcome is ClaimOutcome.UNKNOWN
    assert not await store.mark_unknown(SCOPE, "k1")


async def test_stale_claim_without_an_intent_is_claimed_afresh(store: Store) -> None:
    """In flight past the timeout with no submit intent: nothing was sent, so NEW again."""
    await store.claim(SCOPE, "k1", "fp-a", T0)
    early = await store.claim(SCOPE, "k1", "fp-a", T0 + TIMEOUT - 1, in_flight_timeout=TIMEOUT)
    assert early.outcome is ClaimOutcome.IN_FLIGHT
    late = await store.claim(SCOPE, "k1", "fp-a", T0 + TIMEOUT, in_flight_timeout=TIMEOUT)
    assert late.outcome is ClaimOutcome.NEW
    again = await store.claim(SCOPE, "k1", "fp-a", T0 + TIMEOUT + 1, in_flight_timeout=TIMEOUT)
    assert again.outcome is ClaimOutcome.IN_FLIGHT


async def test_stale_claim_with_an_intent_stays_in_flight(store: Store) -> None:
    """In flight past the timeout while its intent exists (it may be bought): never NEW."""
    await store.claim(SCOPE, "k1", "fp-a", T0)
    await store.open_intent(
        Intent(
            intent_id="i1",
            owner="replica-a",
            created_at=T0,
            job=new_job("unknown:i1"),
            idempotency_scope=SCOPE,
            idempotency_key="k1",
        )
    )
    late = await store.claim(SCOPE, "k1", "fp-a", T0 + TIMEOUT * 2, in_flight_timeout=TIMEOUT)
    assert late.outcome is ClaimOutcome.IN_FLIGHT


async def test_expired_key_can_be_claimed_again(store: Store) -> None:
    """Once its TTL passes, a key is NEW again, even for a different request."""
    await store.claim(SCOPE, "k1", "fp-a", T0, ttl_seconds=TTL)
    await store.complete(SCOPE, "k1", StoredResponse(status=200))
    before = await store.claim(SCOPE, "k1", "fp-b", T0 + TTL - 1, ttl_seconds=TTL)
    assert before.outcome is ClaimOutcome.MISMATCH
    after = await store.claim(SCOPE, "k1", "fp-b", T0 + TTL, ttl_seconds=TTL)
    assert after.outcome is ClaimOutcome.NEW
    assert (await store.claim(SCOPE, "k1", "fp-b", T0 + TTL)).outcome is ClaimOutcome.IN_FLIGHT


async def test_release_forgets_an_uncompleted_claim(store: Store) -> None:
    """A released claim lets the retry proceed as NEW; a completed key cannot be released."""
    await store.claim(SCOPE, "k1", "fp-a", T0)
    assert await store.release(SCOPE, "k1")
    assert (await store.claim(SCOPE, "k1", "fp-a", T0 + 1)).outcome is ClaimOutcome.NEW
    await store.complete(SCOPE, "k1", StoredResponse(status=200))
    assert not await store.release(SCOPE, "k1")
    assert (await store.claim(SCOPE, "k1", "fp-a", T0 + 2)).outcome is ClaimOutcome.REPLAY


async def test_keys_are_scoped_per_caller(store: Store) -> None:
    """The same key from two callers is two independent claims."""
    assert (await store.claim("fp:aaa", "k1", "fp-a", T0)).outcome is ClaimOutcome.NEW
    assert (await store.claim("fp:bbb", "k1", "fp-b", T0)).outcome is ClaimOutcome.NEW


async def test_purge_expired_deletes_only_expired(store: Store) -> None:
    """purge_expired removes keys past their TTL and counts them."""
    await store.claim(SCOPE, "old", "fp", T0, ttl_seconds=10)
    await store.claim(SCOPE, "new", "fp", T0, ttl_seconds=100)
    assert await store.purge_expired(T0 + 10) == 1
    assert await store.purge_expired(T0 + 10) == 0
    assert (await store.claim(SCOPE, "new", "fp", T0 + 11)).outcome is ClaimOutcome.IN_FLIGHT


async def test_exactly_one_of_many_concurrent_claims_wins(store: Store, replica: Store) -> None:
    """Of 50 concurrent claims of one key over two replicas, exactly one is NEW."""
    claims = await asyncio.gather(
        *((store if i % 2 else replica).claim(SCOPE, "hot", "fp-a", T0) for i in range(50))
    )
    outcomes = Counter(c.outcome for c in claims)
    assert outcomes == {ClaimOutcome.NEW: 1, ClaimOutcome.IN_FLIGHT: 49}


async def test_exactly_one_concurrent_takeover_of_an_expired_key(
    store: Store, replica: Store
) -> None:
    """When a key has expired, exactly one of 50 concurrent claimers takes it over."""
    await store.claim(SCOPE, "hot", "fp-old", T0, ttl_seconds=10)
    claims = await asyncio.gather(
        *((store if i % 2 else replica).claim(SCOPE, "hot", "fp-a", T0 + 10) for i in range(50))
    )
    outcomes = Counter(c.outcome for c in claims)
    assert outcomes == {ClaimOutcome.NEW: 1, ClaimOutcome.IN_FLIGHT: 49}
