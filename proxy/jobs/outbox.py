"""Ledger writes that must land, retried until the store takes them.

When the store fails after the upstream has answered (a task was bought, or a
refusal must free its money), the request is answered anyway and the write is
kept here and retried with backoff until it lands. Every write kept here is
idempotent (it re-reads the intent it resolves), so a write that did land before
its error was reported is harmless to repeat. If the process dies first, the
intent is still in the store and the recovery sweep turns it into an ``unknown``
record: nothing is lost either way. While a write waits, the idempotency key of
its request stays claimed, so a client's retry gets 409, never a second purchase.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from proxy.stores.base import StoreError

log = structlog.get_logger("proxy.ledger")
Write = Callable[[], Awaitable[object]]


@dataclass(slots=True)
class _Pending:
    name: str
    write: Write
    attempts: int = 0
    first_failed_at: float = field(default_factory=time.monotonic)


class Outbox:
    """Pending ledger writes and the one task that retries them."""

    def __init__(
        self,
        *,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self._pending: list[_Pending] = []
        self._base = base_delay
        self._max = max_delay
        self._on_change = on_change
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._pending)

    async def write(self, name: str, write: Write) -> bool:
        """Try ``write`` now; on a store failure keep it for retry. True if it landed now."""
        try:
            await write()
        except (StoreError, OSError, TimeoutError) as exc:
            log.warning("ledger.write_deferred", write=name, error=str(exc)[:300])
            self._pending.append(_Pending(name, write, attempts=1))
            self._changed()
            self._ensure_running()
            return False
        return True

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def _run(self) -> None:
        delay = self._base
        while self._pending:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            progress = await self.flush()
            delay = self._base if progress else min(self._max, delay * 2)

    async def flush(self) -> bool:
        """One pass over what is pending; True if anything landed."""
        landed = False
        for item in list(self._pending):
            try:
                await item.write()
            except (StoreError, OSError, TimeoutError) as exc:
                item.attempts += 1
                if item.attempts % 10 == 0:
                    log.warning(
                        "ledger.write_still_pending",
                        write=item.name,
                        attempts=item.attempts,
                        pending_seconds=round(time.monotonic() - item.first_failed_at, 1),
                        error=str(exc)[:300],
                    )
                break  # the store is still down: try the rest on the next pass
            self._pending.remove(item)
            landed = True
            log.info("ledger.write_landed", write=item.name, attempts=item.attempts + 1)
        if landed:
            self._changed()
        return landed

    async def close(self, within: float) -> None:
        """Give pending writes ``within`` seconds to land, then stop (the sweep covers the rest)."""
        if self._pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    while self._pending:
                        if not await self.flush():
                            await asyncio.sleep(self._base)
        if self._pending:
            log.error("ledger.writes_abandoned_at_shutdown", pending=len(self._pending))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(len(self._pending))
