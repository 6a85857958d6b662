"""Soak: steady traffic for N seconds, printing the store's size every few seconds.

Each second: new submits (each a new idempotency key), replays of earlier keys,
and a small burst on the capped key (some refused ``key_concurrency``, which the
store records as refusals). Every ``every`` seconds one line shows each table's
row count and the database size, so retention can be seen levelling the store off.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from chaos.client import Request, Tally, submit_once
from chaos.rig import Setup, open_rig
from chaos.storeview import StoreView

NEW_PER_SECOND = 8
REPLAYS_PER_SECOND = 2
CAPPED_PER_SECOND = 5


async def _send(session: aiohttp.ClientSession, url: str, req: Request, tally: Tally) -> None:
    try:
        status, doc, raw, _ = await submit_once(session, url, req)
    except (aiohttp.ClientError, TimeoutError):
        tally.answers["connection_error"] += 1
        return
    tally.add(status, doc, raw)


async def _report(view: StoreView, started: float) -> str:
    counts = await view.counts()
    size = await view.size_bytes()
    rows = " ".join(f"{table}={n}" for table, n in sorted(counts.items()))
    return f"soak t={time.monotonic() - started:5.0f}s size={size / 1024:.0f}KiB {rows}"


async def soak(
    seconds: float,
    store: str,
    workdir: Path,
    every: float = 5.0,
    extra_env: Mapping[str, str] | None = None,
) -> int:
    setup = Setup(store=store, latency=0.0)
    async with open_rig(setup, workdir / f"soak-{store}", extra_env) as rig:
        await rig.fleet.start_all()
        url = rig.fleet.urls()[0]
        rng = random.Random(7)
        tally = Tally()
        sent: list[Request] = []
        started = time.monotonic()
        next_report = started
        second = 0
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() - started < seconds:
                tick = time.monotonic()
                if tick >= next_report:
                    print(await _report(rig.view, started), flush=True)
                    next_report += every
                batch = [
                    Request(f"soak-{second}-{i}", f"soak {second} #{i}", rig.tokens["main"])
                    for i in range(NEW_PER_SECOND)
                ]
                batch += rng.sample(sent, min(REPLAYS_PER_SECOND, len(sent)))
                batch += [
                    Request(f"soak-c-{second}-{i}", f"soak c {second} #{i}", rig.tokens["capped"])
                    for i in range(CAPPED_PER_SECOND)
                ]
                await asyncio.gather(*(_send(session, url, r, tally) for r in batch))
                sent.extend(batch[:NEW_PER_SECOND])
                second += 1
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        print(await _report(rig.view, started), flush=True)
        print(f"soak answers: {dict(sorted(tally.answers.items()))}", flush=True)
        return 1 if tally.proxy_500 else 0
