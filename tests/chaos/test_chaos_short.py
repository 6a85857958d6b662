"""The fault suite, short: a few fault kinds against real processes, the invariant asserted.

``make chaos`` runs every fault kind and ten random-instant kills; this runs three
fault kinds and three random-instant kills (about a minute once nothing leaks).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chaos import report
from chaos.runner import run_scenario
from chaos.scenarios import SHORT, Scenario, catalogue

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
SETTLE_SECONDS = 10.0
RANDOM_KILLS = 3
SEED = random.randrange(1_000_000)  # the kill instants differ each run; the seed is reported


def _scenario(name: str) -> Scenario:
    return next(s for s in catalogue(RANDOM_KILLS, SEED) if s.name == name)


async def _assert_invariant(scenario: Scenario, workdir: Path) -> None:
    figures = await run_scenario(scenario, workdir, settle_seconds=SETTLE_SECONDS)
    shown = f"seed {SEED}\n{report.table([figures])}\n{report.details([figures])}"
    assert figures.lost == 0, shown
    assert figures.double_bought == 0, shown
    assert figures.proxy_500 == 0, shown
    assert figures.leaked_reservations == 0, shown
    assert figures.leaked_slots == 0, shown
    assert figures.violations == [], shown


@pytest.mark.parametrize("name", SHORT)
async def test_fault_kind_keeps_the_money_invariant(name: str, tmp_path: Path) -> None:
    """Under this fault each upstream task is in the ledger or an unknown record, leak-free."""
    await _assert_invariant(_scenario(name), tmp_path)


@pytest.mark.parametrize("run", range(RANDOM_KILLS))
async def test_kill_at_a_random_instant_keeps_the_money_invariant(run: int, tmp_path: Path) -> None:
    """kill -9 of the proxy at a random instant of a burst loses, double-buys and leaks nothing."""
    name = next(
        s.name for s in catalogue(RANDOM_KILLS, SEED) if s.name.startswith(f"random_kill9[{run}]")
    )
    await _assert_invariant(_scenario(name), tmp_path)
