"""Run one scenario: burst and fault together, recover, settle, probe, account."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp

from chaos.accounting import TERMINAL, Figures, account
from chaos.client import Request, Result, Tally, burst, submit_once
from chaos.rig import CAPPED_CAP, Rig, open_rig
from chaos.scenarios import Scenario, start_fleet

CAPPED_IN_BURST = 3
DEFAULT_SETTLE = 12.0


def requests_for(name: str, count: int, tokens: Mapping[str, str]) -> list[Request]:
    """``count`` unique requests; the last three use the capped key."""
    out = []
    for i in range(count):
        token = tokens["capped"] if i >= count - CAPPED_IN_BURST else tokens["main"]
        out.append(Request(f"{name}-{i}", f"chaos {name} #{i}", token))
    return out


async def snapshot(rig: Rig, sc: Scenario, results: Sequence[Result], tally: Tally) -> Figures:
    tasks = rig.upstream.tasks()
    jobs = await rig.view.rows("jobs")
    reservations = await rig.view.rows("budget_reservations")
    return account(sc.name, rig.setup.store, results, tally, tasks, jobs, reservations)


async def settle(
    rig: Rig, sc: Scenario, results: Sequence[Result], tally: Tally, within: float
) -> Figures:
    """Wait until the current upstream's jobs are terminal and nothing is lost or leaked.

    Bounded by ``within`` seconds; the figures at that moment are returned either way.
    """
    prefix = f"task-g{rig.upstream.generation}-"
    deadline = time.monotonic() + within
    while True:
        figures = await snapshot(rig, sc, results, tally)
        jobs = await rig.view.rows("jobs")
        running = [
            j
            for j in jobs
            if str(j["task_id"]).startswith(prefix) and str(j.get("status")) not in TERMINAL
        ]
        clean = not (figures.lost or figures.leaked_reservations or figures.leaked_slots)
        if (not running and clean) or time.monotonic() >= deadline:
            return figures
        await asyncio.sleep(0.5)


async def probe_slots(rig: Rig, sc: Scenario, tally: Tally) -> tuple[list[Result], int]:
    """Submit what must still fit under the capped key's cap, once each, at the same time.

    Returns the probe requests' results and how many were refused ``key_concurrency``.
    """
    jobs = await rig.view.rows("jobs")
    capped_id = await _capped_key_id(rig)
    busy = sum(
        1
        for j in jobs
        if str(j.get("caller")) == f"vk:{capped_id}" and str(j.get("status")) not in TERMINAL
    )
    free = CAPPED_CAP - busy
    urls = rig.fleet.urls()
    if free <= 0 or not urls:
        return [], 0
    reqs = [
        Request(f"{sc.name}-probe-{i}", f"chaos {sc.name} probe #{i}", rig.tokens["capped"])
        for i in range(free)
    ]
    probe_tally = Tally()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:

        async def one(i: int, req: Request) -> Result:
            result = Result(req, attempts=1)
            try:
                status, doc, raw, _ = await submit_once(session, urls[i % len(urls)], req)
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.answers.append(type(exc).__name__)
                return result
            probe_tally.add(status, doc, raw)
            tally.add(status, doc, raw)
            result.answers.append(str(status))
            if status == 200 and isinstance(doc, dict):
                result.final, result.task_id = "accepted", doc["data"]["task_id"]
            else:
                result.final = "refused"
            return result

        results = await asyncio.gather(*(one(i, r) for i, r in enumerate(reqs)))
    return list(results), probe_tally.key_concurrency_429


async def _capped_key_id(rig: Rig) -> str:
    keys = await rig.view.rows("virtual_keys")
    return next(str(k["key_id"]) for k in keys if k.get("name") == "chaos-capped")


async def run_scenario(
    sc: Scenario,
    workdir: Path,
    *,
    settle_seconds: float = DEFAULT_SETTLE,
    extra_env: Mapping[str, str] | None = None,
) -> Figures:
    started = time.monotonic()
    async with open_rig(sc.setup, workdir / sc.name, extra_env) as rig:
        checks = await (sc.before or start_fleet)(rig)
        requests = requests_for(sc.name, sc.burst, rig.tokens)
        tally = Tally()
        async with asyncio.TaskGroup() as group:
            sent = group.create_task(burst(rig.fleet.urls, requests, tally, sc.seed))
            faulted = group.create_task(sc.fault(rig))
        results = list(sent.result())
        checks += faulted.result()
        figures = await settle(rig, sc, results, tally, settle_seconds)
        probes, refused = await probe_slots(rig, sc, tally)
        final = await snapshot(rig, sc, [*results, *probes], tally)
        final.leaked_slots = max(final.leaked_slots, figures.leaked_slots, refused)
        if refused:
            final.notes.append(f"slot probe: {refused} of {len(probes)} refused key_concurrency")
        final.checks += checks
        finals = [r.final for r in results]
        final.notes.insert(
            0,
            "client: "
            + " ".join(
                f"{k}={finals.count(k)}" for k in ("accepted", "unknown", "refused", "gave_up")
            )
            + f" answers={dict(sorted(tally.answers.items()))}",
        )
        stuck = Counter(
            r.answers[-1] + (f"/{r.error_types[-1]}" if r.error_types else "")
            for r in results
            if r.final == "gave_up" and r.answers
        )
        if stuck:
            final.notes.append(f"gave up after: {dict(stuck)}")
        final.seconds = time.monotonic() - started
        return final
