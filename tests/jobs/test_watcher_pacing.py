"""The watcher's poll-rate limit (a token bucket on an injected clock), without I/O."""

from __future__ import annotations

import pytest

from proxy.jobs.schedule import TokenBucket


def test_burst_then_the_rate() -> None:
    """A full bucket lets ``burst`` polls go at once, then one every ``1 / rate`` seconds."""
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert bucket.take(0.05) == pytest.approx(0.05)
    assert bucket.take(0.1) == 0.0
    assert bucket.take(0.1) == pytest.approx(0.1)


def test_savings_are_capped_at_the_burst() -> None:
    """An idle spell saves up no more than ``burst`` tokens."""
    bucket = TokenBucket(rate=100, burst=2, now=0.0)
    taken = sum(1 for _ in range(10) if bucket.take(60.0) == 0.0)
    assert taken == 2


def test_over_any_window_no_more_than_burst_plus_rate() -> None:
    """Taking as fast as allowed for 10 s yields burst + rate x 10 tokens, give or take one."""
    bucket = TokenBucket(rate=50, burst=5, now=0.0)
    now, taken = 0.0, 0
    while now < 10.0:
        wait = bucket.take(now)
        if wait == 0.0:
            taken += 1
        else:
            now += wait
    assert 5 + 500 - 1 <= taken <= 5 + 500 + 1


def test_pause_holds_every_token_until_the_reset() -> None:
    """After an upstream 429 nothing is taken before the reset, and the burst starts empty."""
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    bucket.pause_until(30.0)
    assert bucket.take(10.0) == pytest.approx(20.0)
    assert bucket.take(30.0) == pytest.approx(0.1)
    assert bucket.take(30.1) == 0.0
    bucket.pause_until(20.0)  # an earlier reset changes nothing
    assert bucket.take(30.3) == 0.0


def test_rejects_a_bucket_that_never_fills() -> None:
    """A rate of zero or a burst below one token is a configuration error."""
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0, burst=1, now=0.0)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate=1, burst=0.5, now=0.0)
