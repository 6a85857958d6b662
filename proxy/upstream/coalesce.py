"""Identical concurrent requests share one upstream call (a "single flight").

The first caller runs the call itself, with no task or hop of its own, so a poll nobody
shares costs nothing extra. Callers that arrive while it runs wait for its result. If
the first caller goes away (its client disconnected), the call is cancelled with it and
the callers still waiting are not left without an answer: the first of them runs the
call again, and the others wait for that one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _LeaderGone(Exception):
    """The caller running the shared call was cancelled: a waiter must run it again."""


class Coalescer(Generic[T]):
    def __init__(self) -> None:
        # Each call in flight, and the future its first caller settles: made only once a
        # second caller waits (a call nobody shares makes none).
        self._inflight: dict[Hashable, asyncio.Future[T] | None] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The result of ``work()``, and whether it was shared with an earlier identical call."""
        inflight = self._inflight
        while key in inflight:
            running = inflight[key]
            if running is None:  # the first to wait for this call
                running = inflight[key] = asyncio.get_running_loop().create_future()
            try:
                # shield: a waiter that goes away must not cancel the shared result
                return await asyncio.shield(running), True
            except _LeaderGone:
                continue  # the first caller left: run it (or join whoever runs it now)
        # Only this caller takes its entry out again: waiters only give it a future.
        inflight[key] = None
        try:
            result = await work()
        except asyncio.CancelledError:
            if (future := inflight.pop(key, None)) is not None:
                _fail(future, _LeaderGone())
            raise
        except BaseException as exc:
            if (future := inflight.pop(key, None)) is not None:
                _fail(future, exc)
            raise
        if (future := inflight.pop(key, None)) is not None:
            future.set_result(result)
        return result, False

    def __len__(self) -> int:
        return len(self._inflight)


def _fail(future: asyncio.Future[T], exc: BaseException) -> None:
    future.set_exception(exc)
    future.exception()  # retrieved: no "never retrieved" warning when nobody waits
