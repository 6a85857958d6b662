"""The roster's mechanics: start in order, stop in reverse, unwind a failed start, log a loop
that fails."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from harness.waits import wait_until
from proxy.roster import Closing, Loop, Roster


async def test_the_roster_starts_in_order_stops_in_reverse_and_unwinds_a_failed_start() -> None:
    """Components start in the order added and stop last first; a start that fails stops
    those already started and raises."""
    events: list[str] = []

    def closing(name: str) -> Closing:
        async def close() -> None:
            events.append(f"stop {name}")

        return Closing(name, close)

    async def forever() -> None:
        events.append("run loop")
        await asyncio.Event().wait()

    roster = Roster()
    roster.add(closing("a"))
    roster.add(Loop("loop", forever))
    roster.add(closing("b"))
    await roster.start()
    await wait_until(lambda: "run loop" in events)
    await roster.stop()
    assert events == ["run loop", "stop b", "stop a"]

    events.clear()

    async def broken() -> None:
        raise RuntimeError("cannot start")

    failing = Roster()
    failing.add(closing("first"))
    failing.add(Loop("broken", forever, first=broken))
    with pytest.raises(RuntimeError, match="cannot start"):
        await failing.start()
    assert events == ["stop first"]
    with pytest.raises(ValueError, match="two components"):
        failing.add(closing("first"))


async def test_a_loop_whose_work_fails_is_logged_and_stops_cleanly() -> None:
    """An exception that ends a loop's work is logged with the component's name; stop() works."""

    async def fails() -> None:
        raise RuntimeError("boom")

    loop = Loop("fragile", fails)
    with capture_logs() as logs:
        await loop.start()
        await wait_until(lambda: not loop.running)
        await loop.stop()
    failed = [e for e in logs if e["event"] == "roster.component_failed"]
    assert [e["component"] for e in failed] == ["fragile"]
