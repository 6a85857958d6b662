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
        self._inflight: dict[Hashable, asyncio.Future[T]] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The result of ``work()``, and whether it was shared with an earlier identical call."""
        while (running := self._inflight.get(key)) is not None:
            try:
                # shield: a waiter that goes away must not cancel the shared result
                return await asyncio.shield(running), True
            except _LeaderGone:
                continue  # the first caller left: run it (or join whoever runs it now)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await work()
        except asyncio.CancelledError:
            _fail(future, _LeaderGone())
            raise
        except BaseException as exc:
            _fail(future, exc)
            raise
        else:
            future.set_result(result)
            return result, False
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    def __len__(self) -> int:
        return len(self._inflight)


def _fail(future: asyncio.Future[T], exc: BaseException) -> None:
    future.set_exception(exc)
    future.exception()  # retrieved: no "never retrieved" warning when nobody waits
