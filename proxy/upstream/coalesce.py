"""Identical concurrent requests share one upstream call (a "single flight").

The shared call runs in its own task, so a client that goes away does not
cancel it for the others waiting on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalescer(Generic[T]):
    def __init__(self) -> None:
        self._inflight: dict[Hashable, asyncio.Task[T]] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The result of ``work()``, and whether it was shared with an earlier identical call."""
        task = self._inflight.get(key)
        shared = task is not None
        if task is None:
            task = asyncio.get_running_loop().create_task(_call(work))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task), shared

    def __len__(self) -> int:
        return len(self._inflight)


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()
