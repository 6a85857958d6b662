"""Single flight without a task of its own: the first caller runs the call inline."""

from __future__ import annotations

import asyncio

from proxy.upstream.coalesce import Coalescer


async def test_a_lone_call_runs_in_the_callers_own_task() -> None:
    """A call nobody shares runs in the caller's task (no extra task, no shield)."""
    caller = asyncio.current_task()
    seen: list[asyncio.Task[object] | None] = []

    async def work() -> int:
        seen.append(asyncio.current_task())
        return 7

    single: Coalescer[int] = Coalescer()
    assert await single.run("k", work) == (7, False)
    assert seen == [caller]
    assert len(single) == 0


async def test_waiters_run_the_call_again_when_the_first_caller_leaves() -> None:
    """The first caller's cancellation reaches its own call only; one waiter runs it again."""
    calls = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal calls
        calls += 1
        mine = calls
        await release.wait()
        return mine

    single: Coalescer[int] = Coalescer()
    first = asyncio.ensure_future(single.run("k", work))
    await asyncio.sleep(0)
    waiters = [asyncio.ensure_future(single.run("k", work)) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()
    for _ in range(100):  # until a waiter has taken the call over (bounded)
        if calls == 2:
            break
        await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters)
    assert calls == 2
    assert {value for value, _ in results} == {2}
    assert [shared for _, shared in results].count(False) == 1
    assert first.cancelled()
    assert len(single) == 0
