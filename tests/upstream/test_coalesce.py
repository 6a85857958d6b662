"""Single flight: concurrent identical requests share one call; a leaver does not cancel it."""

from __future__ import annotations

import asyncio

import pytest

from proxy.upstream.coalesce import Coalescer


async def test_concurrent_identical_calls_share_one_result() -> None:
    """Ten concurrent calls with one key run the work once; other keys run their own."""
    calls = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal calls
        calls += 1
        mine = calls  # which call this is, whenever it resumes
        await release.wait()
        return mine

    single: Coalescer[int] = Coalescer()
    waiters = [asyncio.ensure_future(single.run("a", work)) for _ in range(10)]
    other = asyncio.ensure_future(single.run("b", work))
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters)
    assert calls == 2
    assert {value for value, _ in results} == {1}
    assert [shared for _, shared in results].count(False) == 1
    assert (await other)[1] is False
    assert len(single) == 0


async def test_a_cancelled_caller_does_not_cancel_the_shared_call() -> None:
    """When the first caller goes away, the others still get the result."""
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    single: Coalescer[str] = Coalescer()
    first = asyncio.ensure_future(single.run("k", work))
    second = asyncio.ensure_future(single.run("k", work))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert (await second)[0] == "done"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_errors_reach_every_waiter() -> None:
    """A failing shared call raises in every caller, and the key is free again."""

    async def boom() -> int:
        raise ValueError("upstream garbage")

    single: Coalescer[int] = Coalescer()
    results = await asyncio.gather(
        single.run("k", boom), single.run("k", boom), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    assert len(single) == 0
