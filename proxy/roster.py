"""Long-running components and the roster that starts and stops them in order.

Every background activity of a proxy process is a :class:`Component`: something with a
name that can be started and stopped. Most are a loop that runs until cancelled
(:class:`Loop`); a few only need to flush something at the end (the outbox). The list of
components, each with the condition under which it runs, is written once, in
``proxy.background.roster``; a component that does not run is recorded there with the
reason, so turning one off never silently stops another, and the start-up log says which
run and which do not (``roster.started``).

The roster starts components in the order they were added and stops them in reverse: a
component may rely on every one added before it for as long as it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

log = structlog.get_logger("proxy.roster")

Work = Callable[[], Coroutine[Any, Any, None]]


class Component(Protocol):
    """One long-running part of the proxy."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None:
        """Begin; return once running (work that takes longer goes on in the background)."""

    async def stop(self) -> None:
        """End, releasing what it holds; never raises."""


class Loop:
    """A component whose work is one coroutine, run in a task until it is cancelled.

    ``first``, when given, runs to completion inside :meth:`start` (e.g. a first round that
    must be done before the proxy serves). The task is kept (a strong reference) and awaited
    on :meth:`stop`; an exception that ends the work early is logged with its traceback.
    The work loops are written to survive their own failures; this is the last resort.
    """

    def __init__(self, name: str, work: Work, *, first: Work | None = None) -> None:
        self._name = name
        self._work = work
        self._first = first
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._first is not None:
            await self._first()
        self._task = asyncio.get_running_loop().create_task(self._guarded(), name=self._name)

    async def _guarded(self) -> None:
        try:
            await self._work()
        except asyncio.CancelledError:
            raise
        except Exception:  # the work ended early: the rest of the proxy goes on
            log.exception("roster.component_failed", component=self._name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class Closing:
    """A component that starts nothing and, on stop, awaits ``close`` (e.g. a final flush)."""

    def __init__(self, name: str, close: Work) -> None:
        self._name = name
        self._close = close

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        try:
            await self._close()
        except Exception:
            log.exception("roster.component_failed", component=self._name)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A component this process does not run, and why."""

    name: str
    reason: str


class Roster:
    """Components in start order, and those that do not run with the reason."""

    def __init__(self) -> None:
        self._members: list[Component] = []
        self._skipped: list[Skipped] = []
        self._started: list[Component] = []

    def add(self, component: Component) -> None:
        if component.name in self.names:
            raise ValueError(f"two components named {component.name!r}")
        self._members.append(component)

    def skip(self, name: str, reason: str) -> None:
        self._skipped.append(Skipped(name, reason))

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the components that run, in start order."""
        return tuple(c.name for c in self._members)

    @property
    def skipped(self) -> tuple[Skipped, ...]:
        return tuple(self._skipped)

    def get(self, name: str) -> Component | None:
        return next((c for c in self._members if c.name == name), None)

    async def start(self) -> None:
        """Start every component in order; if one fails, stop those started and raise."""
        for component in self._members:
            try:
                await component.start()
            except BaseException:
                await self.stop()
                raise
            self._started.append(component)
        log.info(
            "roster.started",
            components=list(self.names),
            not_running={s.name: s.reason for s in self._skipped},
        )

    async def stop(self) -> None:
        """Stop what was started, last first."""
        while self._started:
            await self._started.pop().stop()
