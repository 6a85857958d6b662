"""The fault kinds: how each world is built, what happens before the burst, and the fault.

A fault runs concurrently with the submit burst. "Mid-burst" is a condition, not
a delay: the fault waits until the upstream has received a share of the burst's
submits (bounded by a timeout). Fixed durations appear only where the fault itself
is a duration (a 2 s store stall) or an instant drawn at random (the property run).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from chaos.rig import Rig, Setup
from harness.processes import start_expecting_exit
from harness.waits import wait_until

Step = Callable[[Rig], Coroutine[Any, Any, list[str]]]
MID_BURST_WAIT = 15.0
RESTART_READY_SECONDS = 15.0
"""A proxy restarted on its port is ready within this (the bind itself is immediate)."""


@dataclass
class Scenario:
    name: str
    setup: Setup
    fault: Step
    before: Step | None = None
    burst: int = 30
    seed: int = 0
    notes: list[str] = field(default_factory=list)


async def start_fleet(rig: Rig) -> list[str]:
    await rig.fleet.start_all()
    return []


async def until_submits(rig: Rig, count: int) -> bool:
    """Wait until the upstream has received ``count`` submits; False on timeout."""

    async def reached() -> bool:  # the upstream is another process: its counter is polled
        return await rig.upstream.submits_received() >= count

    try:
        await wait_until(reached, MID_BURST_WAIT, f"{count} submits at the upstream")
    except AssertionError:
        return False
    return True


def kill_proxy(after: int, restart: bool = True, index: int = 0) -> Step:
    """kill -9 proxy ``index`` once ``after`` submits reached the upstream; restart it."""

    async def fault(rig: Rig) -> list[str]:
        if not await until_submits(rig, after):
            return ["fault: burst never reached the upstream"]
        await rig.fleet.kill(index)
        if restart:
            await rig.fleet.restart(index)
        return []

    return fault


def restart_on_same_port(after: int) -> Step:
    """kill -9 of the proxy and its workers mid-burst; at once a new one on the same ports.

    The port has the busy proxy's TIME_WAIT sockets on it; the new proxy must bind anyway
    (within a second of the old one's end) and be ready.
    """

    async def fault(rig: Rig) -> list[str]:
        if not await until_submits(rig, after):
            return ["fault: burst never reached the upstream"]
        gone = await rig.fleet.kill_group(0)
        if gone is None:
            return ["fault: no proxy to kill"]
        stopped = time.monotonic()
        try:
            await rig.fleet.restart_on(0, gone.port, gone.admin_port)
        except AssertionError as exc:
            return [f"restart on the same port failed: {str(exc)[:200]}"]
        took = time.monotonic() - stopped
        return [] if took < RESTART_READY_SECONDS else [f"restart: ready after {took:.1f} s"]

    return fault


def kill_at_random(seed: int) -> Step:
    """kill -9 at an instant drawn in the burst or the settlements right after it; restart."""

    async def fault(rig: Rig) -> list[str]:
        await asyncio.sleep(random.Random(seed).uniform(0.05, 1.8))  # the random instant
        await rig.fleet.kill(0)
        await rig.fleet.restart(0)
        return []

    return fault


async def store_stall_then_reset(rig: Rig) -> list[str]:
    assert rig.relay is not None
    if not await until_submits(rig, 8):
        return ["fault: burst never reached the upstream"]
    rig.relay.pause()
    await asyncio.sleep(2.0)  # the stall itself
    rig.relay.cut()
    rig.relay.resume()
    return []


async def store_unreachable_at_start(rig: Rig) -> list[str]:
    """With the store unreachable the proxy exits non-zero with one clear line; then starts."""
    assert rig.relay is not None
    rig.relay.close()
    log = rig.workdir / "unreachable-start.log"
    code = await start_expecting_exit(rig.fleet.env, log)
    rig.relay.open()
    problems: list[str] = []
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    last = lines[-1][:120] if lines else "(nothing)"
    if code is None:
        problems.append("start: still running 30 s after start with the store unreachable")
    elif code == 0:
        problems.append("start: exited 0 with the store unreachable")
    if any("Traceback" in ln for ln in lines) or len(lines) > 2:
        problems.append(
            f"start: exit {code} with {len(lines)} lines of output (traceback) "
            f"instead of one clear line; last: {last}"
        )
    await rig.fleet.start_all()
    return problems


async def no_fault(rig: Rig) -> list[str]:
    return []


def kill_upstream(after: int) -> Step:
    async def fault(rig: Rig) -> list[str]:
        if not await until_submits(rig, after):
            return ["fault: burst never reached the upstream"]
        await rig.upstream.kill()
        await rig.upstream.start()
        return []

    return fault


def inject(*faults: tuple[str, int]) -> Step:
    """Queue upstream faults on the submit route before the burst."""

    async def before(rig: Rig) -> list[str]:
        for name, count in faults:
            await rig.upstream.inject(name, count)
        await rig.fleet.start_all()
        return []

    return before


def catalogue(random_kills: int, seed: int = 0) -> list[Scenario]:
    sqlite = Setup()
    pg = Setup(store="postgres")
    scenarios = [
        Scenario("proxy_kill9_sqlite", sqlite, kill_proxy(10)),
        Scenario("proxy_kill9_postgres", pg, kill_proxy(10)),
        Scenario(
            "proxy_restart_same_port_pg",
            Setup(store="postgres", proxy_env={"MODELLIX_PROXY_WORKERS": "2"}),
            restart_on_same_port(10),
        ),
        Scenario(
            "replica_kill9_1_of_3_pg",
            Setup(store="postgres", replicas=3),
            kill_proxy(10, restart=False, index=1),
        ),
        Scenario(
            "store_stall2s_reset_pg",
            Setup(store="postgres", relay=True, latency=0.6),
            store_stall_then_reset,
            burst=20,
        ),
        Scenario(
            "store_unreachable_start_pg",
            Setup(store="postgres", relay=True),
            no_fault,
            before=store_unreachable_at_start,
            burst=10,
        ),
        Scenario("upstream_kill9_restart", sqlite, kill_upstream(10)),
        Scenario(
            "upstream_5xx_429_burst",
            Setup(latency=0.1),
            no_fault,
            before=inject(("503", 8), ("500", 6), ("429", 6), ("502", 4)),
        ),
        Scenario(
            "upstream_reset_before_create",
            Setup(latency=0.1),
            no_fault,
            before=inject(("reset_before_create", 8)),
        ),
        Scenario(
            "upstream_reset_after_create",
            Setup(latency=0.1),
            no_fault,
            before=inject(("reset_after_create", 8)),
        ),
        Scenario(
            "upstream_stall_past_timeout",
            Setup(latency=0.1),
            no_fault,
            before=inject(("stall", 6)),
        ),
        Scenario(
            "upstream_malformed_2xx",
            Setup(latency=0.1),
            no_fault,
            before=inject(("malformed", 6)),
        ),
    ]
    for i in range(random_kills):
        store = "sqlite" if i % 2 == 0 else "postgres"
        scenarios.append(
            Scenario(
                f"random_kill9[{i}]_{store}",
                Setup(store=store),
                kill_at_random(seed * 1000 + i),
                seed=seed * 1000 + i,
            )
        )
    return scenarios


SHORT = (
    "proxy_kill9_sqlite",
    "store_stall2s_reset_pg",
    "upstream_reset_after_create",
)
